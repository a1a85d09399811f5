#!/usr/bin/env bash
# tts_en: synthesised English speech in LibriSpeech layout (python -m sigma_plugin.corpus.tts:
# train-tts from 592 espeak-ng/espeak/flite/festival voices; dev-tts and test-tts from voice
# families never heard in training). By default the measured winner of the 60-minute CPU budget
# (README.md) as a fixed 6,825 updates (what the hour reached on 2 cores): a CTC model, σReparam +
# post-LN, LARS, no warmup, 10k frames per update, character units (conf/train_sigma_ctc_postln_lars_10k.yaml;
# its 60-minute twin for side-by-side runs: conf/budget60/); training speech speed-perturbed (0.9/1.0/1.1),
# SpecAugment (ss) on training batches;
# decoded greedily, by CTC prefix beam search and with the n-gram LM (add --lm_text FILE).
# test-tts is scored with --test_subsets "dev-tts test-tts". Any recipes/asr.sh option can be
# appended, e.g.  ./run.sh --stage 4 --train_config conf/train_preln_adam_warmup.yaml
set -euo pipefail
cd "$(dirname "$0")"
. ./db.sh
check_corpus_root "$@"  # after the options: --corpus_root DIR replaces TTS_ROOT

../../../recipes/asr.sh \
    --corpus_root "$TTS_ROOT" \
    --train_subsets train-tts \
    --valid_subsets dev-tts \
    --test_subsets dev-tts \
    --vocab_type char \
    --speed_perturb "0.9 1.0 1.1" \
    --specaugment ss \
    --train_config conf/train_sigma_ctc_postln_lars_10k.yaml \
    "$@"
