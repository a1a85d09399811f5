#!/usr/bin/env bash
# English→German MT on the l10n corpus (software translations) with σReparam.
#   ./run.sh                                   # all stages, post-LN σReparam 3L-3L d=256, Adam, no warmup,
#                                              # 2,000 updates (conf/train_sigma_postln_adam.yaml; ~25 min on 2 cores)
#   ./run.sh --train_config conf/budget/stock_transformer_adam_warmup.yaml --tag stock   # stock fairseq
#   ./run.sh --train_config conf/train_preln_adam.yaml   # the earlier pre-LN Adam+warmup baseline (25-min budget)
#   ./run.sh --stage 5 --stop_stage 8          # from training on; reruns resume
# Options are those of recipes/mt.sh; corpus location in db.sh (L10N_DATA=...).
set -euo pipefail
cd "$(dirname "$0")"
. ./db.sh
export PYTHON=${PYTHON:-python}
../../../recipes/mt.sh --src en --tgt de --data_script local/data.sh --vocab_size 8000 \
    --train_config conf/train_sigma_postln_adam.yaml --test_sets "valid test" "$@"
