#!/usr/bin/env bash
# English language modelling on Debian's documentation prose (python -m sigma_plugin.corpus.doc_en)
# with σReparam.
#   ./run.sh                                   # all stages: σReparam post-LN 6L d=256 LM, Adam 4e-3, no warmup,
#                                              # 1,200 updates (conf/train_sigma_postln_adam.yaml)
#   ./run.sh --stage 4 --train_config conf/train_stock_adam_warmup.yaml   # stock fairseq transformer_lm
#   ./run.sh --text_dir DIR                    # your own text: DIR/{train,valid,test}.txt
#   ./run.sh --stage 6 --eval_text FILE        # also score FILE (perplexity beside valid/test)
# Options are those of recipes/lm.sh; corpus location in db.sh (DOC_EN_DATA=...).
set -euo pipefail
cd "$(dirname "$0")"
. ./db.sh
export PYTHON=${PYTHON:-python}
../../../recipes/lm.sh --data_script local/data.sh --vocab_size 8000 \
    --train_config conf/train_sigma_postln_adam.yaml --eval_sets "valid test" "$@"
