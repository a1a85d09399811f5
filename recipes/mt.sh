#!/usr/bin/env bash
# Shared MT stage script (ESPnet egs2 style). egs/<corpus>/mt1/run.sh sets the corpus choices
# and calls it; every option below can be overridden as --name value (or --name-with-dashes).
#
# Stages (--stage N --stop_stage M). Each logs a header and writes atomically; a rerun skips
# stages whose outputs are complete and resumes training from checkpoint_last.pt.
#   1 data      corpus-specific preparation (--data_script) -> data/raw/{train,valid,test}.{src,tgt}
#   2 clean     Unicode NFKC, control characters, whitespace; length filter (--filter_splits) -> data/clean
#   3 vocab     joint SentencePiece model on train (both languages) + encoded text -> data/spm
#   4 binarize  fairseq-preprocess --joined-dictionary -> data/bin
#   5 train     fairseq-train with the flags of --train_config (yaml) -> exp/TAG
#   6 average   average the last --n_average checkpoints -> exp/TAG/checkpoint_avg.pt
#   7 decode    fairseq-generate (beam), detokenised -> exp/TAG/decode_SPLIT/hyp.txt
#   8 score     sacreBLEU BLEU + chrF with signatures -> exp/TAG/decode_SPLIT/results.json, printed
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
         vocab_type spm_max_sentences train_config train_args use_gpu n_average test_sets beam lenpen
         decode_max_tokens decode_args sacrebleu_tokenize)
parse_options "$@"

[[ "$stage" =~ ^[0-9]+$ && "$stop_stage" =~ ^[0-9]+$ ]] || die "--stage/--stop_stage must be numbers (got '$stage', '$stop_stage')"
[ "$stage" -le 9 ] || die "unknown stage $stage: the stages are 1-9 (see the header of $0)"
command -v "$python" >/dev/null || die "--python '$python' not found (run 'make install' and use .venv/bin/python)"
export PYTHONPATH=$project_root${PYTHONPATH:+:$PYTHONPATH}
bindir=$(dirname "$(command -v "$python")")
if [ -n "$train_config" ]; then
    [ -f "$train_config" ] || die "--train_config $train_config: file not found"
    [ -n "$tag" ] || tag=$(basename "$train_config" .yaml)
fi
exp=$expdir/${tag:-none}
splits="train valid test"

need_config() { [ -n "$train_config" ] || die "stage $1 needs --train_config"; }
# fairseq 0.12.3.1's batch_by_size drops the last batch of a subset unless its size is a multiple
# of --required-batch-size-multiple (default 8): validation and decoding would silently leave
# sentences out, so training and decoding pass --required-batch-size-multiple 1.

# ---- 1 data ----------------------------------------------------------------------------
if run_stage 1 data; then
    if [ -f "$datadir/raw/.done" ]; then
        log "data/raw is complete ($datadir/raw/.done); skipping"
    else
        [ -n "$data_script" ] || die "--data_script is required for stage 1"
        [ -x "$data_script" ] || die "--data_script $data_script: not an executable file"
        rm -rf "$datadir/raw.tmp"; mkdir -p "$datadir/raw.tmp"
        "$data_script" "$datadir/raw.tmp" "$src" "$tgt"
        for s in $splits; do
            for l in $src $tgt; do [ -s "$datadir/raw.tmp/$s.$l" ] || die "$data_script did not write $datadir/raw.tmp/$s.$l"; done
        done
        rm -rf "$datadir/raw"; mv "$datadir/raw.tmp" "$datadir/raw"; touch "$datadir/raw/.done"
    fi
fi

# ---- 2 clean ---------------------------------------------------------------------------
if run_stage 2 clean; then
    if [ -f "$datadir/clean/.done" ]; then log "data/clean is complete; skipping"; else
        rm -rf "$datadir/clean.tmp"
        "$python" -m sigma_plugin.recipe.clean --in-prefix "$datadir/raw" --out-prefix "$datadir/clean.tmp" \
            --src "$src" --tgt "$tgt" --splits "${splits// /,}" --max-len "$max_len" --max-ratio "$max_ratio" \
            --filter-splits "$filter_splits"
        rm -rf "$datadir/clean"; mv "$datadir/clean.tmp" "$datadir/clean"; touch "$datadir/clean/.done"
    fi
fi

# ---- 3 vocab ---------------------------------------------------------------------------
if run_stage 3 "vocab (SentencePiece, joint)"; then
    if [ -f "$datadir/spm/.done" ]; then log "data/spm is complete; skipping"; else
        rm -rf "$datadir/spm.tmp"; mkdir -p "$datadir/spm.tmp"
        "$python" -m sigma_plugin.recipe.spm train --input "$datadir/clean/train.$src,$datadir/clean/train.$tgt" \
            --model-prefix "$datadir/spm.tmp/spm" --vocab-size "$vocab_size" --model-type "$vocab_type" \
            --max-sentences "$spm_max_sentences"
        inputs=(); for s in $splits; do for l in $src $tgt; do inputs+=("$datadir/clean/$s.$l"); done; done
        "$python" -m sigma_plugin.recipe.spm encode --model "$datadir/spm.tmp/spm.model" \
            --inputs "${inputs[@]}" --outdir "$datadir/spm.tmp"
        rm -rf "$datadir/spm"; mv "$datadir/spm.tmp" "$datadir/spm"; touch "$datadir/spm/.done"
    fi
fi

# ---- 4 binarize ------------------------------------------------------------------------
if run_stage 4 "binarize (fairseq-preprocess)"; then
    if [ -f "$datadir/bin/.done" ]; then log "data/bin is complete; skipping"; else
        rm -rf "$datadir/bin.tmp"
        "$bindir/fairseq-preprocess" --source-lang "$src" --target-lang "$tgt" \
            --trainpref "$datadir/spm/train" --validpref "$datadir/spm/valid" --testpref "$datadir/spm/test" \
            --destdir "$datadir/bin.tmp" --joined-dictionary --workers "$(nproc)"
        rm -rf "$datadir/bin"; mv "$datadir/bin.tmp" "$datadir/bin"; touch "$datadir/bin/.done"
    fi
fi

# ---- 5 train ---------------------------------------------------------------------------
if run_stage 5 "train ($tag)"; then
    need_config 5
    if [ -f "$exp/.train_done" ]; then log "$exp: training finished earlier; skipping"; else
        mapfile -t conf_flags < <("$python" -m sigma_plugin.recipe.conf "$train_config" --check "$datadir/bin")
        # shellcheck disable=SC2206
        extra=($train_args)
        dev=$(device_flags "$python" "$use_gpu")
        mkdir -p "$exp"
        cp "$train_config" "$exp/train_config.yaml"
        log "fairseq-train ${conf_flags[*]} ${extra[*]} $dev (log: $exp/train.log; resumes from $exp/checkpoint_last.pt)"
        "$bindir/fairseq-train" "$datadir/bin" --user-dir "$plugin_dir" "${conf_flags[@]}" "${extra[@]}" $dev \
            --required-batch-size-multiple 1 --save-dir "$exp" --tensorboard-logdir "$exp/tensorboard" \
            --log-format json 2>&1 | tee -a "$exp/train.log"
        touch "$exp/.train_done"
    fi
fi

# ---- 6 average -------------------------------------------------------------------------
decode_ckpt=$exp/checkpoint_best.pt
[ "$n_average" -gt 0 ] && decode_ckpt=$exp/checkpoint_avg.pt
if run_stage 6 "average (last $n_average checkpoints)"; then
    need_config 6
    if [ "$n_average" -eq 0 ]; then log "--n_average 0: decoding checkpoint_best.pt"
    elif [ -f "$decode_ckpt" ] && [ "$decode_ckpt" -nt "$exp/.train_done" ]; then log "$decode_ckpt is up to date; skipping"
    else "$python" -m sigma_plugin.recipe.average --dir "$exp" --last "$n_average" --output "$decode_ckpt"; fi
fi

# ---- 7 decode --------------------------------------------------------------------------
if run_stage 7 "decode (beam $beam)"; then
    need_config 7
    [ -f "$decode_ckpt" ] || die "$decode_ckpt not found: run stages 5-6 first"
    dev=$(device_flags "$python" "$use_gpu")
    # shellcheck disable=SC2206
    extra=($decode_args)
    for set in $test_sets; do
        out=$exp/decode_$set
        if [ -f "$out/hyp.txt" ] && [ "$out/hyp.txt" -nt "$decode_ckpt" ]; then log "$out/hyp.txt is up to date; skipping"; continue; fi
        mkdir -p "$out"
        "$bindir/fairseq-generate" "$datadir/bin" --user-dir "$plugin_dir" --path "$decode_ckpt" --gen-subset "$set" \
            --beam "$beam" --lenpen "$lenpen" --max-tokens "$decode_max_tokens" --required-batch-size-multiple 1 \
            --post-process sentencepiece "${extra[@]}" $dev > "$out/generate.out.tmp"
        mv "$out/generate.out.tmp" "$out/generate.out"
        "$python" -m sigma_plugin.recipe.hyps --generate-log "$out/generate.out" --output "$out/hyp.txt" \
            --expect "$(wc -l < "$datadir/clean/$set.$tgt")"
    done
fi

# ---- 8 score ---------------------------------------------------------------------------
if run_stage 8 "score (sacreBLEU BLEU, chrF)"; then
    need_config 8
    for set in $test_sets; do
        out=$exp/decode_$set
        "$python" -m sigma_plugin.recipe.score_mt --hyp "$out/hyp.txt" --ref "$datadir/clean/$set.$tgt" \
            --output "$out/results.json" --tokenize "$sacrebleu_tokenize" --name "$tag/$set"
    done
fi

# ---- 9 plot ----------------------------------------------------------------------------
if run_stage 9 "plot (loss, attention entropy, σ/γ)"; then
    need_config 9
    "$bindir/sigma-plot" "$exp/train.log" --labels "$tag" --out "$exp/plots"
fi
log "done (stages $stage-$stop_stage)"
