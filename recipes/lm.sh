#!/usr/bin/env bash
# Shared language-model stage script (ESPnet egs2 style). egs/<corpus>/lm1/run.sh sets the corpus
# choices and calls it; every option below can be overridden as --name value (or --name-with-dashes).
#
# Stages (--stage N --stop_stage M). Each logs a header and writes atomically; a rerun skips
# stages whose outputs are complete and were made with the same options (each stage's .done
# marker records them; other options redo the stage, or for training stop with a message), and
# resumes training from checkpoint_last.pt.
#   1 data      --text_dir DIR (train.txt, valid.txt, test.txt: one sentence or paragraph a line)
#               or --data_script SCRIPT (called as SCRIPT OUTDIR) -> data/raw/{train,valid,test}.txt,
#               checked (UTF-8, not empty) before it is marked complete
#   2 vocab     SentencePiece model on train + encoded splits -> data/spm (--vocab_type none: the
#               text is already tokenized and is used as it is, e.g. WikiText-103)
#   3 binarize  fairseq-preprocess --only-source -> data/bin
#   4 train     fairseq-train (--task language_modeling) with the flags of --train_config -> exp/TAG
#   5 average   average the last --n_average checkpoints -> exp/TAG/checkpoint_avg.pt
#   6 eval      fairseq-eval-lm on --eval_sets (valid, test) and on --eval_text FILE (encoded with the
#               same SentencePiece model, binarized with the training dictionary): perplexity per
#               token and per word -> exp/TAG/eval_SET/results.json, exp/TAG/results.txt, printed
#   7 plot      sigma-plot of the training log (loss, attention entropy, σ/γ) -> exp/TAG/plots
set -euo pipefail

recipe_name=lm.sh
recipe_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
project_root=$(dirname "$recipe_dir")
plugin_dir=$project_root/sigma_plugin
# shellcheck source=recipes/lib.sh
. "$recipe_dir/lib.sh"

# ---- options ---------------------------------------------------------------------------
stage=1               # first stage to run
stop_stage=100        # last stage to run
python=${PYTHON:-python}  # interpreter with torch, fairseq and sigma_plugin
text_dir=             # data: a folder of train.txt, valid.txt, test.txt (overrides --data_script)
data_script=          # data: corpus preparation, called as SCRIPT OUTDIR, writes OUTDIR/{train,valid,test}.txt
datadir=data          # data/raw, data/spm, data/bin
expdir=exp            # experiments go to expdir/TAG
tag=                  # experiment name (default: the training config's file name without .yaml)
vocab_size=8000       # SentencePiece pieces
vocab_type=unigram    # unigram | bpe | char | none (text already tokenized: words are the tokens)
spm_max_sentences=2000000  # lines sampled to train SentencePiece
train_config=         # yaml of fairseq-train options (required for stages 4-7)
train_args=           # extra fairseq-train flags, after the config's (e.g. "--max-update 100")
use_gpu=auto          # auto | true | false (false adds --cpu); all visible GPUs are used by fairseq
n_average=5           # average the last N checkpoints; 0 = evaluate checkpoint_best.pt
eval_sets="valid test"  # splits to score with fairseq-eval-lm (valid and/or test)
eval_text=            # an extra text file to score (one sentence or paragraph a line)
eval_context_window=auto  # tokens of context before each scored block (auto: half the model's
                      # tokens per sample; fairseq's WikiText-103 example uses 400 of 512)
eval_max_tokens=4096  # tokens per eval batch (at least the model's tokens per sample)
eval_args=            # extra fairseq-eval-lm flags

options=(stage stop_stage python text_dir data_script datadir expdir tag vocab_size vocab_type spm_max_sentences
         train_config train_args use_gpu n_average eval_sets eval_text eval_context_window eval_max_tokens eval_args)
parse_options "$@"

check_stage_options 7
splits="train valid test"
check_words --eval_sets "$eval_sets" valid test
case "$vocab_type" in unigram|bpe|char|none) ;; *) die "--vocab_type must be unigram, bpe, char or none (got '$vocab_type')" ;; esac
[[ "$vocab_size" =~ ^[0-9]+$ ]] || die "--vocab_size must be a number (got '$vocab_size')"
[[ "$eval_context_window" == auto || "$eval_context_window" =~ ^[0-9]+$ ]] || die "--eval_context_window must be \
a number of tokens or auto (got '$eval_context_window')"
[[ "$eval_max_tokens" =~ ^[0-9]+$ ]] || die "--eval_max_tokens must be a number (got '$eval_max_tokens')"
if [ -n "$eval_text" ] && [ "$stage" -le 6 ] && [ "$stop_stage" -ge 6 ]; then
    [ -f "$eval_text" ] || die "--eval_text $eval_text: file not found"
    eval_text=$(realpath "$eval_text")
fi
if [ -n "$text_dir" ] && [ "$stage" -le 1 ]; then
    [ -d "$text_dir" ] || die "--text_dir $text_dir: not a folder (it should hold train.txt, valid.txt and test.txt)"
    for s in $splits; do
        [ -s "$text_dir/$s.txt" ] || die "--text_dir $text_dir: $s.txt is missing or empty (the folder should hold train.txt, valid.txt and test.txt, one sentence or paragraph a line)"
    done
    text_dir=$(realpath "$text_dir")
fi

# ---- 1 data ----------------------------------------------------------------------------
# The text is copied (or made by --data_script) into data/raw.tmp and checked; its checksum is
# part of data/raw/.done, so every later marker (each holds the one it read from) changes when
# the text does. Text identical to data/raw's is not copied again.
if run_stage 1 data; then
    if [ -n "$text_dir" ]; then sig_data="text_dir=$text_dir"
    elif [ -n "$data_script" ]; then sig_data="data_script=$data_script"
    else die "stage 1 needs --text_dir DIR (a folder of train.txt, valid.txt, test.txt) or --data_script SCRIPT"
    fi
    rm -rf "$datadir/raw.tmp"; mkdir -p "$datadir/raw.tmp"
    if [ -n "$text_dir" ]; then
        for s in $splits; do cp "$text_dir/$s.txt" "$datadir/raw.tmp/$s.txt"; done
    else
        [ -x "$data_script" ] || die "--data_script $data_script: not an executable file"
        "$data_script" "$datadir/raw.tmp"
        for s in $splits; do [ -s "$datadir/raw.tmp/$s.txt" ] || die "$data_script did not write $datadir/raw.tmp/$s.txt"; done
    fi
    content=$(cat "$datadir/raw.tmp/"{train,valid,test}.txt | sha256sum | cut -c1-16)
    if stage_done "$datadir/raw/.done" "$sig_data content=$content"; then
        log "data/raw is complete and holds the same text; skipping"
        rm -rf "$datadir/raw.tmp"
    else
        "$python" -m sigma_plugin.recipe.lm check --dir "$datadir/raw.tmp" --splits "${splits// /,}" || exit 2
        mark_done "$datadir/raw.tmp/.done" "$sig_data content=$content"
        rm -rf "$datadir/raw"; mv "$datadir/raw.tmp" "$datadir/raw"
    fi
fi

# ---- 2 vocab ---------------------------------------------------------------------------
if run_stage 2 "vocab (SentencePiece $vocab_type)"; then
    sig_spm="$(marker_of "$datadir/raw/.done") | vocab_size=$vocab_size vocab_type=$vocab_type spm_max_sentences=$spm_max_sentences"
    [ "$vocab_type" != none ] || sig_spm="$(marker_of "$datadir/raw/.done") | vocab_type=none"
    if stage_done "$datadir/spm/.done" "$sig_spm"; then log "data/spm is complete; skipping"; else
        [ -f "$datadir/raw/.done" ] || die "$datadir/raw is not complete: run stage 1 first"
        rm -rf "$datadir/spm.tmp"; mkdir -p "$datadir/spm.tmp"
        if [ "$vocab_type" = none ]; then
            log "--vocab_type none: the text is used as it is (words separated by spaces are the tokens)"
            for s in $splits; do cp "$datadir/raw/$s.txt" "$datadir/spm.tmp/$s.txt"; done
        else
            "$python" -m sigma_plugin.recipe.spm train --input "$datadir/raw/train.txt" \
                --model-prefix "$datadir/spm.tmp/spm" --vocab-size "$vocab_size" --model-type "$vocab_type" \
                --max-sentences "$spm_max_sentences"
            "$python" -m sigma_plugin.recipe.spm encode --model "$datadir/spm.tmp/spm.model" \
                --inputs "$datadir/raw/"{train,valid,test}.txt --outdir "$datadir/spm.tmp"
        fi
        mark_done "$datadir/spm.tmp/.done" "$sig_spm"
        rm -rf "$datadir/spm"; mv "$datadir/spm.tmp" "$datadir/spm"
    fi
fi

# ---- 3 binarize ------------------------------------------------------------------------
if run_stage 3 "binarize (fairseq-preprocess --only-source)"; then
    sig_bin="$(marker_of "$datadir/spm/.done")"
    if stage_done "$datadir/bin/.done" "$sig_bin"; then log "data/bin is complete; skipping"; else
        [ -f "$datadir/spm/.done" ] || die "$datadir/spm is not complete: run stage 2 first"
        rm -rf "$datadir/bin.tmp"
        "$bindir/fairseq-preprocess" --only-source --trainpref "$datadir/spm/train.txt" \
            --validpref "$datadir/spm/valid.txt" --testpref "$datadir/spm/test.txt" \
            --destdir "$datadir/bin.tmp" --workers "$(nproc)"
        [ -s "$datadir/bin.tmp/dict.txt" ] || die "fairseq-preprocess wrote no dictionary; see the messages above"
        mark_done "$datadir/bin.tmp/.done" "$sig_bin"
        rm -rf "$datadir/bin"; mv "$datadir/bin.tmp" "$datadir/bin"
    fi
fi

# What the data stages made: data/bin's marker (which chains stages 1-3) and a checksum of the
# dictionary.
data_id() { echo "$(marker_of "$datadir/bin/.done") dict=$(sha256sum < "$datadir/bin/dict.txt" 2>/dev/null | cut -c1-16)"; }

# ---- 4 train ---------------------------------------------------------------------------
# The run's options: the data it trains on, the config's flags and --train_args. A run is never
# continued with other options (fairseq would resume checkpoint_last.pt under them); a larger
# --max-update/--max-epoch continues it.
if run_stage 4 "train ($tag)"; then
    need_config 4
    [ -f "$exp/.train_done" ] || [ -f "$datadir/bin/.done" ] || die "$datadir/bin is not complete: run stages 1-3 first"
    train_stage "$datadir/bin" "$(data_id)"
fi

# ---- 5 average -------------------------------------------------------------------------
if run_stage 5 "average (last $n_average checkpoints)"; then
    need_config 5
    average_stage
fi

# ---- 6 eval ----------------------------------------------------------------------------
# Each scored set's .done holds what it was scored with: the data (data/bin's marker and the
# dictionary), the training run, the checkpoint (path, time, size), the evaluation options and
# the set itself (the binarized split, or the extra text's path and checksum). results.txt lists
# the sets scored with the current model and options.
if run_stage 6 "eval (fairseq-eval-lm: ${eval_sets}${eval_text:+ + $(basename "$eval_text")})"; then
    need_config 6
    [ -f "$exp/.train_done" ] || die "$exp: training has not finished: run stages 4-5 first"
    [ -f "$decode_ckpt" ] || die "$decode_ckpt not found: run stages 4-5 first"
    [ -f "$datadir/bin/.done" ] || die "$datadir/bin is not complete: run stages 1-3 first"
    [[ $(cat "$exp/.train_done") == "$(data_id) | "* ]] || die "$exp was trained on other data than $datadir/bin \
holds now (stages 1-3 were redone): train under another --tag (or remove $exp), or pass --datadir of the data it was trained on"
    mapfile -t task_flags < <("$python" -m sigma_plugin.recipe.lm task-flags "$decode_ckpt")
    [ "${#task_flags[@]}" -eq 4 ] || die "could not read the task options of $decode_ckpt (see the message above)"
    tps=${task_flags[1]}
    window=$eval_context_window
    [ "$window" != auto ] || window=$(( tps / 2 ))
    [ "$window" -lt "$tps" ] || die "--eval_context_window $window must be smaller than the model's tokens per sample ($tps)"
    max_tokens=$(( eval_max_tokens > tps ? eval_max_tokens : tps ))
    dev=$(device_flags "$python" "$use_gpu")
    # shellcheck disable=SC2206
    extra=($eval_args)
    model_sig="$(data_id) | train: $(cat "$exp/.train_done") | $decode_ckpt $(stat -c '%Y %s' "$decode_ckpt") | \
context_window=$window max_tokens=$max_tokens eval_args=$eval_args"

    # eval_one DIR BIN SUBSET TEXT NAME SIGNATURE: fairseq-eval-lm of BIN's SUBSET -> DIR/results.json
    # (one process: on several GPUs fairseq-eval-lm would give each its own shard and perplexity)
    eval_one() {
        local out=$1 bin=$2 subset=$3 text=$4 name=$5 sig=$6
        if [ -f "$out/results.json" ] && stage_done "$out/.done" "$sig"; then
            log "$out is up to date; skipping"; cat "$out/result.txt"; return 0
        fi
        mkdir -p "$out"; rm -f "$out/.done" "$out/results.json" "$out/result.txt"
        # shellcheck disable=SC2086
        "$bindir/fairseq-eval-lm" "$bin" --user-dir "$plugin_dir" --path "$decode_ckpt" --gen-subset "$subset" \
            "${task_flags[@]}" --context-window "$window" --max-tokens "$max_tokens" --distributed-world-size 1 "${extra[@]}" $dev \
            > "$out/eval.log.tmp" 2>&1 || { tail -n 5 "$out/eval.log.tmp" >&2; die "fairseq-eval-lm failed; see $out/eval.log.tmp"; }
        mv "$out/eval.log.tmp" "$out/eval.log"
        "$python" -m sigma_plugin.recipe.lm score --log "$out/eval.log" --text "$text" --name "$name" \
            --output "$out/results.json" --checkpoint "$decode_ckpt" --line-output "$out/result.txt"
        mark_done "$out/.done" "$sig"
    }

    for set in $eval_sets; do
        eval_one "$exp/eval_$set" "$datadir/bin" "$set" "$datadir/raw/$set.txt" "$tag/$set" \
            "$model_sig | $set=$(cat "$datadir/bin/$set".{bin,idx} | sha256sum | cut -c1-16)"
    done

    if [ -n "$eval_text" ]; then
        # the extra text: encoded with data/spm's model, binarized with the training dictionary
        name=$(basename "$eval_text"); name=${name//[^A-Za-z0-9._-]/_}
        out=$exp/eval_text_$name
        "$python" -m sigma_plugin.recipe.lm check --file "$eval_text" || exit 2
        text_id="text=$eval_text content=$(sha256sum < "$eval_text" | cut -c1-16)"
        if ! stage_done "$out/bin/.done" "$(data_id) | $text_id" 2>/dev/null; then
            [ -f "$datadir/spm/.done" ] || die "$datadir/spm is not complete: run stage 2 first"
            rm -rf "$out/text.tmp" "$out/bin.tmp"; mkdir -p "$out/text.tmp"
            if [ -f "$datadir/spm/spm.model" ]; then
                "$python" -m sigma_plugin.recipe.spm encode --model "$datadir/spm/spm.model" --inputs "$eval_text" \
                    --outdir "$out/text.tmp"
                mv "$out/text.tmp/$(basename "$eval_text")" "$out/text.tmp/text.pieces"
            else
                cp "$eval_text" "$out/text.tmp/text.pieces"  # --vocab_type none: words are the tokens
            fi
            "$bindir/fairseq-preprocess" --only-source --srcdict "$datadir/bin/dict.txt" \
                --testpref "$out/text.tmp/text.pieces" --destdir "$out/bin.tmp" --workers 1 > "$out/text.tmp/preprocess.log" 2>&1 \
                || { tail -n 5 "$out/text.tmp/preprocess.log" >&2; die "fairseq-preprocess of --eval_text failed"; }
            log "$(basename "$eval_text"): $(grep -o '[0-9,]* sents, [0-9,]* tokens, [0-9.]*% replaced.*' \
                "$out/text.tmp/preprocess.log" | head -n 1) (with the training dictionary)"
            mark_done "$out/bin.tmp/.done" "$(data_id) | $text_id"
            rm -rf "$out/bin"; mv "$out/bin.tmp" "$out/bin"; rm -rf "$out/text.tmp"
        fi
        eval_one "$out" "$out/bin" test "$eval_text" "$tag/$(basename "$eval_text")" "$model_sig | $text_id"
    fi

    # results.txt: one line a set scored with the current model and evaluation options
    : > "$exp/results.txt.tmp"
    for d in "$exp/eval_valid" "$exp/eval_test" "$exp"/eval_text_*; do
        if [ -f "$d/result.txt" ] && [ -f "$d/.done" ] && [[ $(cat "$d/.done") == "$model_sig | "* ]]; then
            cat "$d/result.txt" >> "$exp/results.txt.tmp"
        fi
    done
    mv "$exp/results.txt.tmp" "$exp/results.txt"
    log "perplexities written to $exp/results.txt"
fi

# ---- 7 plot ----------------------------------------------------------------------------
if run_stage 7 "plot (loss, attention entropy, σ/γ)"; then
    need_config 7
    plot_stage
fi
log "done (stages $stage-$stop_stage)"
