#!/usr/bin/env bash
# WMT'17 En-De with deep post-LN Transformers (DeepNet's setting; newstest2014 test).
#   ./run.sh --train_config conf/train_18l_sigma_postln_sgd.yaml      # σReparam, SGD, no warmup
#   ./run.sh --train_config conf/train_18l_postln_adam.yaml --stage 5  # baselines reuse the data
# Depths 6/18/50/100 (conf/train_{6,18,50,100}l_*.yaml); baselines: postln_adam, preln_adam,
# deepnorm_adam. Multi-GPU: fairseq uses every visible GPU; scale --update-freq to keep 32k
# tokens x GPUs per update (e.g. --train_args "--update-freq 1" on 8 GPUs).
set -euo pipefail
cd "$(dirname "$0")"
. ./db.sh
export PYTHON=${PYTHON:-python}
../../../recipes/mt.sh --src en --tgt de --data_script local/data.sh --vocab_size 32000 \
    --max_len 250 --max_ratio 1.5 --train_config conf/train_18l_sigma_postln_sgd.yaml \
    --test_sets test --beam 4 --lenpen 0.6 "$@"
