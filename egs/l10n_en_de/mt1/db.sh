# Corpus locations (set the variable before running run.sh).
# L10N_DATA: a folder of prepared parallel text {train,valid[,test]}.{en,de}, or "debian" to build one
# from Debian packages' translation catalogs (apt-get download, no root). No default: stage 1 stops
# with a message when it is unset.
L10N_DATA=${L10N_DATA:-}
# Work folder for the Debian build (downloaded .debs are cached there).
L10N_WORKDIR=${L10N_WORKDIR:-downloads/l10n}
