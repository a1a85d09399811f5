# Corpus locations (set the variable before running run.sh, or pass --text_dir DIR instead).
# DOC_EN_DATA: a folder of prepared text {train,valid,test}.txt (one paragraph a line), e.g. the
# output folder of python -m sigma_plugin.corpus.doc_en, or "debian" to build it in stage 1 from
# Debian documentation packages (apt-get download, no root). No default: stage 1 stops with a
# message when it is unset.
DOC_EN_DATA=${DOC_EN_DATA:-}
# Work folder for the Debian build (downloaded .debs and extracted documents are cached there).
DOC_EN_WORKDIR=${DOC_EN_WORKDIR:-downloads/doc_en}
# Debian build only: keep at most this many documents (a small slice, chosen by a stable hash);
# empty = all.
DOC_EN_MAX_DOCS=${DOC_EN_MAX_DOCS:-}
# Debian build only: comma-separated Debian packages to build from instead of the built-in list
# of 94 (e.g. the demo's seven manuals); empty = the built-in list.
DOC_EN_PACKAGES=${DOC_EN_PACKAGES:-}
