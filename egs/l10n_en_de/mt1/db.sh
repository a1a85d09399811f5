# Corpus locations (override by setting the variable before running run.sh).
_project_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
# A folder of prepared parallel text {train,valid[,test]}.{en,de}, or "debian" to build one from
# Debian packages' translation catalogs (apt-get download, no root). When the default folder
# does not exist, the data stage builds from Debian.
L10N_DATA=${L10N_DATA:-$_project_root/../shared/data/l10n_en_de}
# Work folder for the Debian build (downloaded .debs are cached there).
L10N_WORKDIR=${L10N_WORKDIR:-downloads/l10n}
