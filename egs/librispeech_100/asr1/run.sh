#!/usr/bin/env bash
# LibriSpeech train-clean-100: σReparam + post-LN encoder-decoder (CTC weight 0.3), LARS,
# no warmup. Any recipes/asr.sh option can be appended, e.g.
#   ./run.sh --stage 4 --train_config conf/train_preln_adam_warmup.yaml
set -euo pipefail
cd "$(dirname "$0")"
. ./db.sh

../../../recipes/asr.sh \
    --corpus_root "$LIBRISPEECH" \
    --corpus_download librispeech \
    --train_subsets train-clean-100 \
    --valid_subsets "dev-clean dev-other" \
    --test_subsets "dev-clean dev-other test-clean test-other" \
    --nj 8 \
    --vocab_type unigram \
    --vocab_size 5000 \
    --specaugment ld \
    --train_config conf/train_sigma_postln_lars.yaml \
    --n_average 10 \
    --beam 10 \
    "$@"
