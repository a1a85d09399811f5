#!/usr/bin/env bash
# Shared MT stage script (ESPnet egs2 style). egs/<corpus>/mt1/run.sh sets the corpus choices
# and calls it; every option below can be overridden as --name value (or --name-with-dashes).
#
# Stages (--stage N --stop_stage M). Each logs a header and writes atomically; a rerun skips
# stages whose outputs are complete and were made with the same options (each stage's .done
# marker records them; other options redo the stage, or for training stop with a message), and
# resumes training from checkpoint_last.pt.
#   1 data      corpus-specific preparation (--data_script) -> data/raw/{train,valid,test}.{src,tgt},
#               checked (line-aligned, UTF-8) before it is marked complete
#   2 clean     Unicode NFKC, control characters, whitespace; length filter (--filter_splits) -> data/clean
#   3 vocab     joint SentencePiece model on train (both languages) + encoded text, at most
#               --max_pieces pieces a line -> data/spm
#   4 binarize  fairseq-preprocess --joined-dictionary -> data/bin
#   5 train     fairseq-train with the flags of --train_config (yaml) -> exp/TAG
#   6 average   average the last --n_average checkpoints -> exp/TAG/checkpoint_avg.pt
#   7 decode    fairseq-generate (beam), detokenised -> exp/TAG/decode_SPLIT/hyp.txt
#   8 score     sacreBLEU BLEU + chrF with signatures, against the raw references (data/raw)
#               -> exp/TAG/decode_SPLIT/results.json, printed
#   9 plot      sigma-plot of the training log (loss, attention entropy, σ/γ) -> exp/TAG/plots
set -euo pipefail

recipe_name=mt.sh
recipe_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
project_root=$(dirname "$recipe_dir")
plugin_dir=$project_root/sigma_plugin
# shellcheck source=recipes/lib.sh
. "$recipe_dir/lib.sh"

# ---- options ---------------------------------------------------------------------------
stage=1               # first stage to run
stop_stage=100        # last stage to run
python=${PYTHON:-python}  # interpreter with torch, fairseq and sigma_plugin
src=en                # source language suffix
tgt=de                # target language suffix
data_script=          # corpus preparation: called as SCRIPT OUTDIR SRC TGT, writes OUTDIR/SPLIT.LANG
datadir=data          # data/raw, data/clean, data/spm, data/bin
expdir=exp            # experiments go to expdir/TAG
tag=                  # experiment name (default: the training config's file name without .yaml)
max_len=200           # clean: max words per side of a training pair
max_ratio=3           # clean: max length ratio of a training pair
filter_splits=train   # clean: splits the length filter applies to (comma-separated, e.g. train,valid,test)
vocab_size=8000       # SentencePiece pieces (joint source+target)
vocab_type=unigram    # unigram | bpe | char
spm_max_sentences=2000000  # sentences sampled to train SentencePiece
max_pieces=250        # vocab: most SentencePiece pieces per side; longer training pairs are dropped,
                      # longer valid/test lines cut (counted in the log)
train_config=         # yaml of fairseq-train options (required for stages 5-7)
train_args=           # extra fairseq-train flags, after the config's (e.g. "--max-update 100")
use_gpu=auto          # auto | true | false (false adds --cpu); all visible GPUs are used by fairseq
n_average=5           # average the last N checkpoints; 0 = decode checkpoint_best.pt
test_sets="test"      # splits to decode and score (valid and/or test)
beam=5                # beam size
lenpen=1.0            # length penalty
decode_max_tokens=8000  # tokens per decoding batch
decode_args=          # extra fairseq-generate flags
sacrebleu_tokenize=13a  # sacreBLEU tokenizer

options=(stage stop_stage python src tgt data_script datadir expdir tag max_len max_ratio filter_splits vocab_size
         vocab_type spm_max_sentences max_pieces train_config train_args use_gpu n_average test_sets beam lenpen
         decode_max_tokens decode_args sacrebleu_tokenize)
parse_options "$@"

check_stage_options 9
splits="train valid test"
check_words --test_sets "$test_sets" valid test


# ---- 1 data ----------------------------------------------------------------------------
# data/raw/.done also holds a checksum of the text, so that every later marker (each holds the
# one it read from) changes when the corpus does, even under the same options.
sig_data="data_script=$data_script src=$src tgt=$tgt"
if run_stage 1 data; then
    if [ -f "$datadir/raw/.done" ] && [[ $(cat "$datadir/raw/.done") == "$sig_data content="* ]]; then
        log "data/raw is complete ($datadir/raw/.done); skipping"
    elif [ -f "$datadir/raw/.done" ] && stage_done "$datadir/raw/.done" "$sig_data"; then
        log "data/raw is complete ($datadir/raw/.done); skipping"
    else
        [ -n "$data_script" ] || die "--data_script is required for stage 1"
        [ -x "$data_script" ] || die "--data_script $data_script: not an executable file"
        rm -rf "$datadir/raw.tmp"; mkdir -p "$datadir/raw.tmp"
        "$data_script" "$datadir/raw.tmp" "$src" "$tgt"
        for s in $splits; do
            for l in $src $tgt; do [ -s "$datadir/raw.tmp/$s.$l" ] || die "$data_script did not write $datadir/raw.tmp/$s.$l"; done
        done
        # checked (aligned, UTF-8) before it is marked complete
        "$python" -m sigma_plugin.recipe.check_corpus --prefix "$datadir/raw.tmp" --src "$src" --tgt "$tgt" \
            --splits "${splits// /,}" || exit 2
        content=$(for s in $splits; do cat "$datadir/raw.tmp/$s.$src" "$datadir/raw.tmp/$s.$tgt"; done | sha256sum | cut -c1-16)
        mark_done "$datadir/raw.tmp/.done" "$sig_data content=$content"
        rm -rf "$datadir/raw"; mv "$datadir/raw.tmp" "$datadir/raw"
    fi
fi

# ---- 2 clean ---------------------------------------------------------------------------
if run_stage 2 clean; then
    sig_clean="$(marker_of "$datadir/raw/.done") | max_len=$max_len max_ratio=$max_ratio filter_splits=$filter_splits"
    if stage_done "$datadir/clean/.done" "$sig_clean"; then log "data/clean is complete; skipping"; else
        [ -f "$datadir/raw/.done" ] || die "$datadir/raw is not complete: run stage 1 first"
        rm -rf "$datadir/clean.tmp"
        "$python" -m sigma_plugin.recipe.clean --in-prefix "$datadir/raw" --out-prefix "$datadir/clean.tmp" \
            --src "$src" --tgt "$tgt" --splits "${splits// /,}" --max-len "$max_len" --max-ratio "$max_ratio" \
            --filter-splits "$filter_splits"
        mark_done "$datadir/clean.tmp/.done" "$sig_clean"
        rm -rf "$datadir/clean"; mv "$datadir/clean.tmp" "$datadir/clean"
    fi
fi

# ---- 3 vocab ---------------------------------------------------------------------------
if run_stage 3 "vocab (SentencePiece, joint)"; then
    sig_spm="$(marker_of "$datadir/clean/.done") | vocab_size=$vocab_size vocab_type=$vocab_type spm_max_sentences=$spm_max_sentences max_pieces=$max_pieces"
    if stage_done "$datadir/spm/.done" "$sig_spm"; then log "data/spm is complete; skipping"; else
        [ -f "$datadir/clean/.done" ] || die "$datadir/clean is not complete: run stage 2 first"
        rm -rf "$datadir/spm.tmp"; mkdir -p "$datadir/spm.tmp"
        "$python" -m sigma_plugin.recipe.spm train --input "$datadir/clean/train.$src,$datadir/clean/train.$tgt" \
            --model-prefix "$datadir/spm.tmp/spm" --vocab-size "$vocab_size" --model-type "$vocab_type" \
            --max-sentences "$spm_max_sentences"
        "$python" -m sigma_plugin.recipe.spm_splits --model "$datadir/spm.tmp/spm.model" --in-prefix "$datadir/clean" \
            --outdir "$datadir/spm.tmp" --src "$src" --tgt "$tgt" --splits "${splits// /,}" \
            --max-pieces "$max_pieces" --drop-splits train
        mark_done "$datadir/spm.tmp/.done" "$sig_spm"
        rm -rf "$datadir/spm"; mv "$datadir/spm.tmp" "$datadir/spm"
    fi
fi

# ---- 4 binarize ------------------------------------------------------------------------
if run_stage 4 "binarize (fairseq-preprocess)"; then
    sig_bin="$(marker_of "$datadir/spm/.done")"
    if stage_done "$datadir/bin/.done" "$sig_bin"; then log "data/bin is complete; skipping"; else
        [ -f "$datadir/spm/.done" ] || die "$datadir/spm is not complete: run stage 3 first"
        rm -rf "$datadir/bin.tmp"
        "$bindir/fairseq-preprocess" --source-lang "$src" --target-lang "$tgt" \
            --trainpref "$datadir/spm/train" --validpref "$datadir/spm/valid" --testpref "$datadir/spm/test" \
            --destdir "$datadir/bin.tmp" --joined-dictionary --workers "$(nproc)"
        mark_done "$datadir/bin.tmp/.done" "$sig_bin"
        rm -rf "$datadir/bin"; mv "$datadir/bin.tmp" "$datadir/bin"
    fi
fi

# What the data stages made: data/bin's marker (which chains stages 1-4) and a checksum of the
# dictionary.
data_id() { echo "$(marker_of "$datadir/bin/.done") dict=$(cat "$datadir/bin/dict.$src.txt" "$datadir/bin/dict.$tgt.txt" 2>/dev/null | sha256sum | cut -c1-16)"; }

# ---- 5 train ---------------------------------------------------------------------------
# The run's options: the data it trains on, the config's flags and --train_args. A run is never
# continued with other options (fairseq would resume checkpoint_last.pt under them); a larger
# --max-update/--max-epoch continues it.
if run_stage 5 "train ($tag)"; then
    need_config 5
    [ -f "$exp/.train_done" ] || [ -f "$datadir/bin/.done" ] || die "$datadir/bin is not complete: run stages 1-4 first"
    legacy_sig_train="$(marker_of "$datadir/bin/.done") | train_config=$(sha256sum < "$train_config" | cut -c1-16) train_args=$train_args"
    train_stage "$datadir/bin" "$(data_id)"
fi

# ---- 6 average -------------------------------------------------------------------------
if run_stage 6 "average (last $n_average checkpoints)"; then
    need_config 6
    average_stage
fi

# ---- 7 decode --------------------------------------------------------------------------
# $out/.done holds what the hypotheses were decoded from: the data (data/bin's marker, which
# chains stages 1-4), the training run and the checkpoint (path, time, size), and the decoding
# options. Stage 8 scores only hypotheses whose marker matches the current ones.
decode_signature() {  # SPLIT
    [ -f "$exp/.train_done" ] || die "$exp: training has not finished: run stages 5-6 first"
    [ -f "$decode_ckpt" ] || die "$decode_ckpt not found: run stages 5-6 first"
    echo "$(data_id) $1=$(cat "$datadir/bin/$1.$src-$tgt".* 2>/dev/null | sha256sum | cut -c1-16) | train: \
$(cat "$exp/.train_done") | $decode_ckpt $(stat -c '%Y %s' "$decode_ckpt") | beam=$beam lenpen=$lenpen \
max_tokens=$decode_max_tokens decode_args=$decode_args"
}
# The run was trained on the data that data/bin holds now: after stages 1-4 were redone, an old
# model would decode another vocabulary and be scored against other references.
check_trained_on_current_data() {
    local trained; trained=$(cat "$exp/.train_done")
    # (the second form: a run trained before the data checksum was recorded)
    [[ $trained == "$(data_id) | "* || $trained == "$(marker_of "$datadir/bin/.done") | train_config="* ]] || die "$exp was trained on other data than $datadir/bin holds now \
(stages 1-4 were redone): train under another --tag (or remove $exp), or pass --datadir of the data it was trained on"
}
if run_stage 7 "decode (beam $beam)"; then
    need_config 7
    [ -f "$exp/.train_done" ] || die "$exp: training has not finished: run stages 5-6 first"
    [ -f "$decode_ckpt" ] || die "$decode_ckpt not found: run stages 5-6 first"
    check_trained_on_current_data
    dev=$(device_flags "$python" "$use_gpu")
    # shellcheck disable=SC2206
    extra=($decode_args)
    for set in $test_sets; do
        out=$exp/decode_$set
        sig_decode=$(decode_signature "$set")
        if [ -f "$out/hyp.txt" ] && stage_done "$out/.done" "$sig_decode"; then log "$out/hyp.txt is up to date; skipping"; continue; fi
        mkdir -p "$out"; rm -f "$out/.done" "$out/results.json"
        "$bindir/fairseq-generate" "$datadir/bin" --user-dir "$plugin_dir" --path "$decode_ckpt" --gen-subset "$set" \
            --beam "$beam" --lenpen "$lenpen" --max-tokens "$decode_max_tokens" --required-batch-size-multiple 1 \
            --post-process sentencepiece "${extra[@]}" $dev > "$out/generate.out.tmp"
        mv "$out/generate.out.tmp" "$out/generate.out"
        "$python" -m sigma_plugin.recipe.hyps --generate-log "$out/generate.out" --output "$out/hyp.txt" \
            --expect "$(wc -l < "$datadir/clean/$set.$tgt")"
        mark_done "$out/.done" "$sig_decode"
    done
fi

# ---- 8 score ---------------------------------------------------------------------------
# Against the raw references (data/raw, as published scores use them), not the cleaned copy:
# SPLIT.ids names the raw line of each hypothesis (every line unless --filter_splits names SPLIT).
# Only hypotheses decoded from the current data, checkpoint and decoding options are scored.
if run_stage 8 "score (sacreBLEU BLEU, chrF, raw references)"; then
    need_config 8
    for set in $test_sets; do
        out=$exp/decode_$set
        sig_decode=$(decode_signature "$set")
        [ -f "$out/hyp.txt" ] || die "$out/hyp.txt not found: run stage 7 first"
        [ -f "$out/.done" ] && [ "$(cat "$out/.done")" = "$sig_decode" ] || die "$out/hyp.txt was decoded from \
another data set, checkpoint or decoding options than the current ones (was: $(marker_of "$out/.done"); now: \
$sig_decode): rerun stage 7"
        [ -f "$datadir/clean/$set.ids" ] || die "$datadir/clean/$set.ids not found: rerun stage 2 (it records which raw lines were kept)"
        "$python" -m sigma_plugin.recipe.score_mt --hyp "$out/hyp.txt" --ref "$datadir/raw/$set.$tgt" \
            --ref-lines "$datadir/clean/$set.ids" --output "$out/results.json" --tokenize "$sacrebleu_tokenize" \
            --name "$tag/$set"
    done
fi

# ---- 9 plot ----------------------------------------------------------------------------
if run_stage 9 "plot (loss, attention entropy, σ/γ)"; then
    need_config 9
    plot_stage
fi
log "done (stages $stage-$stop_stage)"
