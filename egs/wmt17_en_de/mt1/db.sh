# Where the WMT'17 En-De archives are downloaded and unpacked (override before run.sh).
WMT17_DIR=${WMT17_DIR:-downloads/wmt17}
