#!/usr/bin/env bash
# tts_en: synthesised English speech in LibriSpeech layout (train-tts 1,200 utts, dev-tts 200
# utts of an unseen voice). σReparam + post-LN encoder-decoder, LARS, no warmup.
# Any recipes/asr.sh option can be appended, e.g.  ./run.sh --stage 4 --train_config conf/train_preln_adam_warmup.yaml
set -euo pipefail
cd "$(dirname "$0")"
. ./db.sh

../../../recipes/asr.sh \
    --corpus_root "$TTS_ROOT" \
    --train_subsets train-tts \
    --valid_subsets dev-tts \
    --test_subsets dev-tts \
    --vocab_type unigram \
    --vocab_size 256 \
    --specaugment none \
    --train_config conf/train_sigma_postln_lars.yaml \
    "$@"
