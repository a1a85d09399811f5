#!/usr/bin/env bash
# WikiText-103 language modelling in fairseq's published layout (examples/language_model): the
# word-level text of wikitext-103 (wiki.{train,valid,test}.tokens), binarized as it is (no
# SentencePiece: --vocab_type none, fairseq's 267k-word dictionary), scored with
# fairseq-eval-lm --context-window 400 of 512 tokens. Has not been run here (README).
#   ./run.sh                                   # σReparam post-LN transformer_lm, Adam, no warmup
#   ./run.sh --stage 4 --train_config conf/train_stock_transformer_lm.yaml   # fairseq's README command
# Options are those of recipes/lm.sh; corpus location in db.sh (WIKITEXT103=...).
set -euo pipefail
cd "$(dirname "$0")"
. ./db.sh
export PYTHON=${PYTHON:-python}
../../../recipes/lm.sh --data_script local/data.sh --vocab_type none \
    --train_config conf/train_sigma_postln_adam.yaml --eval_sets "valid test" --eval_context_window 400 "$@"
