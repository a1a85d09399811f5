#!/usr/bin/env bash
# IWSLT'14 German→English (TED talks) with σReparam; the pre-LN Adam baseline via
#   ./run.sh --train_config conf/train_preln_adam.yaml --stage 5
set -euo pipefail
cd "$(dirname "$0")"
. ./db.sh
export PYTHON=${PYTHON:-python}
../../../recipes/mt.sh --src de --tgt en --data_script local/data.sh --vocab_size 10000 \
    --train_config conf/train_sigma_postln_sgd.yaml --test_sets test "$@"
