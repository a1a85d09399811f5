# Where the IWSLT'14 De-En archive is downloaded and unpacked (override before run.sh).
IWSLT14_DIR=${IWSLT14_DIR:-downloads/iwslt14}
IWSLT14_URL=${IWSLT14_URL:-http://dl.fbaipublicfiles.com/fairseq/data/iwslt14/de-en.tgz}
