#!/usr/bin/env bash
# Shared ASR stage script (ESPnet egs2 style). egs/<corpus>/asr1/run.sh sets the corpus choices
# and calls it; every option below can be overridden as --name value (or --name-with-dashes).
#
# Stages (--stage N --stop_stage M). Each logs a header and writes atomically; a rerun skips
# work whose outputs are complete and were made with the same options (stages 2-4 record them;
# other options redo features/vocabulary, and stop training with a message), and resumes
# training from checkpoint_last.pt.
#   1 data     download the corpus if --corpus_download says so; check the subset folders
#   2 fbank    80-dim log-mel fbank in stored zips + SUBSET.tsv manifests -> DUMPDIR
#              (training subsets optionally speed-perturbed and noised: --speed_perturb, --noise_snr)
#   3 vocab    SentencePiece model + fairseq dict, global CMVN, config.yaml -> DUMPDIR
#   4 train    fairseq-train with the flags of --train_config (yaml) -> EXPDIR/TAG
#   5 average  average the last --n_average checkpoints -> EXPDIR/TAG/checkpoint_avg.pt
#   6 decode   beam search (fairseq-generate), greedy CTC and/or CTC prefix beam search, the last
#              also with an n-gram LM (ctc_beam_lm: LM of the training transcripts + --lm_text,
#              dev/test sentences dropped -> DUMPDIR/lm/), per subset -> EXPDIR/TAG/decode_*/SUBSET
#   7 score    WER/CER (jiwer) per subset and per voice (SPEAKERS.txt) -> EXPDIR/TAG/decode_*/RESULTS.tsv,
#              printed (one row per decoding method and subset)
#   8 plot     sigma-plot of the training log (loss, attention entropy, σ/γ) -> EXPDIR/TAG/plots
set -euo pipefail

recipe_name=asr.sh
recipe_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
project_root=$(dirname "$recipe_dir")
plugin_dir=$project_root/sigma_plugin
# shellcheck source=recipes/lib.sh
. "$recipe_dir/lib.sh"

# ---- options ---------------------------------------------------------------------------
stage=1                # first stage to run
stop_stage=100         # last stage to run
python=${PYTHON:-python}  # interpreter with torch, fairseq and sigma_plugin
nj=2                   # parallel processes for fbank extraction
corpus_root=           # folder holding the subset folders (LibriSpeech layout)
corpus_download=none   # none | librispeech (stage 1 downloads missing subsets from OpenSLR)
train_subsets=         # space-separated; names must start with "train" (fairseq's speech_to_text rule)
valid_subsets=         # space-separated; validation during training
test_subsets=          # space-separated; decoded and scored (default: the valid subsets)
dumpdir=dump           # features, manifests, vocabulary, config.yaml
expdir=exp             # experiments go to expdir/TAG
tag=                   # experiment name (default: the training config's file name without .yaml)
sample_rate=16000      # required sample rate of the audio
n_mels=80              # filterbank channels
max_utts=0             # >0: keep this many evenly spaced utterances per subset (quick runs)
max_skip_ratio=0.05    # fail if a larger fraction of a subset has to be skipped
speed_perturb=1.0      # training subsets: speed factors, one copy each (e.g. "0.9 1.0 1.1"; 1.0 = none)
noise_snr=             # training subsets: LOW,HIGH dB: add noise at a random SNR (empty = none)
vocab_type=unigram     # unigram | bpe | char
vocab_size=256         # SentencePiece pieces (ignored for char)
specaugment=ss         # none | lb | ld | sm | ss (fairseq's SpecAugment policies, training only)
freq_warp=0            # W > 0: vocal-tract length perturbation of training batches, warp in [1-W, 1+W] (e.g. 0.1)
train_config=          # yaml of fairseq-train options (required for stages 4-8)
train_args=            # extra fairseq-train flags, after the config's (e.g. "--max-update 100")
use_gpu=auto           # auto | true | false (false adds --cpu); all visible GPUs are used by fairseq
n_average=5            # average the last N checkpoints; 0 = decode checkpoint_best.pt
decode_method=auto     # auto, or one or more of beam ctc_greedy ctc_beam ctc_beam_lm (auto: "ctc_greedy
                       # ctc_beam ctc_beam_lm" for sigma_s2t_ctc archs, else beam)
lm_order=6             # ctc_beam_lm: n-gram order of the token LM
lm_text=               # ctc_beam_lm: more text files for the LM, one sentence per line (besides the
                       # training transcripts; sentences of the valid/test subsets are dropped)
lm_max_sentences=200000  # ctc_beam_lm: read --lm_text up to this many LM sentences (0 = all)
lm_beam=24             # ctc_beam_lm: beam size (an LM needs a wider beam than plain CTC search)
lm_weight=0.8          # ctc_beam_lm: weight of ln P_LM per token
lm_token_bonus=2.0     # ctc_beam_lm: score added per emitted token
beam=5                 # beam size (attention beam search and CTC prefix beam search)
max_len_a=0.2          # beam search: max output length = a * input frames + b
max_len_b=20
decode_max_tokens=50000  # input frames per decoding batch
decode_args=           # extra flags for fairseq-generate / decode_ctc

options=(stage stop_stage python nj corpus_root corpus_download train_subsets valid_subsets
         test_subsets dumpdir expdir tag sample_rate n_mels max_utts max_skip_ratio speed_perturb noise_snr vocab_type
         vocab_size specaugment freq_warp train_config train_args use_gpu n_average decode_method beam
         lm_order lm_text lm_max_sentences lm_beam lm_weight lm_token_bonus max_len_a max_len_b decode_max_tokens decode_args)
parse_options "$@"

check_stage_options 8
[ -n "$corpus_root" ] || die "--corpus_root is required"
[ -n "$train_subsets" ] || die "--train_subsets is required"
[ -n "$valid_subsets" ] || die "--valid_subsets is required"
[ -n "$test_subsets" ] || test_subsets=$valid_subsets
for s in $train_subsets; do
    [[ $s == train* ]] || die "--train_subsets: '$s' must start with 'train' (fairseq's speech_to_text rule)"
done
# shellcheck disable=SC2086
for s in $train_subsets $valid_subsets $test_subsets; do
    [[ $s =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || die "--train_subsets/--valid_subsets/--test_subsets: '$s' is not a \
subset folder name (letters, digits, . _ -; separate several with spaces)"
done
[ "$(printf '%s\n' $test_subsets | sort | uniq -d)" = "" ] || die "--test_subsets: '$(printf '%s\n' $test_subsets \
| sort | uniq -d | head -1)' is given twice"
# shellcheck disable=SC2086
for s in $valid_subsets $test_subsets; do
    [[ $s != train* ]] || [[ " $train_subsets " == *" $s "* ]] || die "--valid_subsets/--test_subsets: '$s' starts \
with 'train', so stage 2 would speed-perturb and noise it like training data; rename it"
done
# shellcheck disable=SC2206
sp_factors=($speed_perturb)
[ "${#sp_factors[@]}" -gt 0 ] || die "--speed_perturb needs at least one factor (1.0: no perturbation)"
for f in "${sp_factors[@]}"; do
    [[ $f =~ ^[0-9]*\.?[0-9]+$ ]] || die "--speed_perturb: '$f' is not a factor (e.g. \"0.9 1.0 1.1\")"
done
[[ $freq_warp =~ ^[0-9]*\.?[0-9]+$ ]] || die "--freq_warp must be a number (0 = off, e.g. 0.1), got '$freq_warp'"
[ -z "$noise_snr" ] || [[ $noise_snr =~ ^-?[0-9.]+,-?[0-9.]+$ ]] || die "--noise_snr must be LOW,HIGH in dB (e.g. 10,30), got '$noise_snr'"
# shellcheck disable=SC2086
all_subsets=$(printf '%s\n' $train_subsets $valid_subsets $test_subsets | awk '!seen[$0]++' | tr '\n' ' ')
decode_dir=

# The value of --arch in the training config (empty if absent).
config_arch() {
    local flags
    mapfile -t flags < <("$python" -m sigma_plugin.recipe.conf "$train_config")
    for ((i = 0; i + 1 < ${#flags[@]}; i++)); do
        [ "${flags[$i]}" = --arch ] && { echo "${flags[$((i + 1))]}"; return; }
    done
}

# ---- 1 data ----------------------------------------------------------------------------
if run_stage 1 "data ($corpus_root: $all_subsets)"; then
    case "$corpus_download" in
        none) ;;
        # shellcheck disable=SC2086
        librispeech) bash "$recipe_dir/asr_librispeech_download.sh" "$corpus_root" $all_subsets ;;
        *) die "--corpus_download must be none or librispeech, got '$corpus_download'" ;;
    esac
    for s in $all_subsets; do
        [ -d "$corpus_root/$s" ] || die "subset folder $corpus_root/$s not found (check db.sh or --corpus_root)"
    done
fi

# ---- 2 fbank ---------------------------------------------------------------------------
# $dumpdir/.fbank_options and .vocab_options hold the options stages 2 and 3 ran with: other
# options redo them (--overwrite) instead of keeping features or a vocabulary made differently.
if run_stage 2 "fbank ($n_mels-dim features and manifests -> $dumpdir, nj=$nj)"; then
    sig_fbank="corpus_root=$corpus_root sample_rate=$sample_rate n_mels=$n_mels max_utts=$max_utts max_skip_ratio=$max_skip_ratio"
    # augmentation enters the marker only when used, so features made without it stay valid
    [ "${sp_factors[*]}" = 1.0 ] || sig_fbank+=" speed_perturb=${sp_factors[*]}"
    [ -z "$noise_snr" ] || sig_fbank+=" noise_snr=$noise_snr"
    aug=(--speed-perturb "${sp_factors[@]}")
    [ -z "$noise_snr" ] || aug+=(--noise-snr "$noise_snr")
    overwrite=()
    if [ -f "$dumpdir/.fbank_options" ] && ! stage_done "$dumpdir/.fbank_options" "$sig_fbank"; then
        overwrite=(--overwrite); rm -f "$dumpdir/.fbank_options"
    fi
    # shellcheck disable=SC2086
    "$python" -m sigma_plugin.asr.prep_fbank --root "$corpus_root" --subsets $all_subsets \
        --out-dir "$dumpdir" --nj "$nj" --sample-rate "$sample_rate" --n-mels "$n_mels" \
        --max-skip-ratio "$max_skip_ratio" --max-utts "$max_utts" "${aug[@]}" "${overwrite[@]}" \
        || die "feature extraction failed (see the message above)"
    mark_done "$dumpdir/.fbank_options" "$sig_fbank"
fi

# ---- 3 vocab ---------------------------------------------------------------------------
if run_stage 3 "vocab (SentencePiece $vocab_type, CMVN, config.yaml -> $dumpdir)"; then
    sig_vocab="$(marker_of "$dumpdir/.fbank_options") | train_subsets=$train_subsets vocab_type=$vocab_type vocab_size=$vocab_size specaugment=$specaugment"
    # the warp enters the marker only when used, so data prepared without it stays valid
    awk "BEGIN { exit !($freq_warp > 0) }" && sig_vocab+=" freq_warp=$freq_warp"
    overwrite=()
    if [ -f "$dumpdir/config.yaml" ] && ! stage_done "$dumpdir/.vocab_options" "$sig_vocab"; then
        overwrite=(--overwrite); rm -f "$dumpdir/.vocab_options"
    fi
    # shellcheck disable=SC2086
    "$python" -m sigma_plugin.asr.prep_vocab --data-dir "$dumpdir" --train-subsets $train_subsets \
        --vocab-type "$vocab_type" --vocab-size "$vocab_size" --specaugment "$specaugment" --n-mels "$n_mels" \
        --freq-warp "$freq_warp" --sample-rate "$sample_rate" \
        "${overwrite[@]}"
    mark_done "$dumpdir/.vocab_options" "$sig_vocab"
fi

# What stages 2-3 made: their markers and checksums of the vocabulary, the data config, the
# CMVN statistics and the manifests of the training and validation subsets.
data_id() {
    local f files=("$dumpdir/config.yaml" "$dumpdir/gcmvn.npz")
    for f in "$dumpdir"/spm_*.txt; do files+=("$f"); done
    # shellcheck disable=SC2086
    for f in $train_subsets $valid_subsets; do files+=("$dumpdir/$f.tsv"); done
    echo "$(marker_of "$dumpdir/.vocab_options") data=$(cat "${files[@]}" 2>/dev/null | sha256sum | cut -c1-16)"
}

# ---- 4 train ---------------------------------------------------------------------------
# A run is never continued on other data or with other options (fairseq would resume
# checkpoint_last.pt under them).
if run_stage 4 "train ($tag)"; then
    need_config 4
    legacy_sig_train="$(marker_of "$dumpdir/.vocab_options") | train_config=$(sha256sum < "$train_config" | cut -c1-16) train_args=$train_args valid_subsets=$valid_subsets"
    # shellcheck disable=SC2086
    train_stage "$dumpdir" "$(data_id) valid_subsets=$valid_subsets" --train-subset "$(echo $train_subsets | tr ' ' ',')" \
        --valid-subset "$(echo $valid_subsets | tr ' ' ',')"
fi

# ---- 5 average -------------------------------------------------------------------------
if run_stage 5 "average (last $n_average checkpoints)"; then
    need_config 5
    average_stage
fi

# ---- 6 decode, 7 score -----------------------------------------------------------------
decode_dirs=()
if [ "$stop_stage" -ge 6 ] && [ "$stage" -le 7 ]; then
    need_config 6
    if [ "$decode_method" = auto ]; then
        if [[ $(config_arch) == sigma_s2t_ctc* ]]; then decode_method="ctc_greedy ctc_beam ctc_beam_lm"
        else decode_method=beam; fi
    fi
    [[ $beam =~ ^[1-9][0-9]*$ ]] || die "--beam must be a positive number, got '$beam'"
    [[ $lm_beam =~ ^[1-9][0-9]*$ ]] || die "--lm_beam must be a positive number, got '$lm_beam'"
    # shellcheck disable=SC2206
    methods=($decode_method)
    [ "${#methods[@]}" -gt 0 ] || die "--decode_method is empty (auto, or one or more of beam ctc_greedy ctc_beam ctc_beam_lm)"
    for m in "${methods[@]}"; do
        case "$m" in
            beam) decode_dirs+=("$exp/decode_$(basename "$decode_ckpt" .pt)_beam$beam") ;;
            ctc_greedy) decode_dirs+=("$exp/decode_$(basename "$decode_ckpt" .pt)_ctc_greedy") ;;
            ctc_beam) decode_dirs+=("$exp/decode_$(basename "$decode_ckpt" .pt)_ctc_beam$beam") ;;
            ctc_beam_lm) decode_dirs+=("$exp/decode_$(basename "$decode_ckpt" .pt)_ctc_beam${lm_beam}_lm$lm_order") ;;
            *) die "--decode_method: '$m' is not auto, beam, ctc_greedy, ctc_beam or ctc_beam_lm" ;;
        esac
    done
    # the subsets to decode have features (unless stage 2 runs now and makes them)
    if [ "$stage" -gt 2 ]; then
        for s in $test_subsets; do
            [ -f "$dumpdir/$s.tsv" ] || die "--test_subsets: '$s' has no features ($dumpdir/$s.tsv): run stage 2 with it in --test_subsets"
        done
    fi
fi

# $decode_dir/SUBSET/.decode_options holds what the hypotheses were decoded from: the data
# (stages 2-3's markers and checksums, the subset's manifest), the training run, the checkpoint
# (path, time, size), the decoding options and, for ctc_beam_lm, the LM; stage 7 scores only
# hypotheses whose marker matches the current ones.
decode_signature() {  # METHOD SUBSET
    [ -f "$exp/.train_done" ] || die "$exp: training has not finished: run stages 4-5 first"
    [ -f "$decode_ckpt" ] || die "$decode_ckpt not found: run stages 4-5 first"
    [ -f "$dumpdir/$2.tsv" ] || die "--test_subsets: '$2' has no features ($dumpdir/$2.tsv): run stage 2 with it in --test_subsets"
    local sig
    sig="$(data_id) $2=$(sha256sum < "$dumpdir/$2.tsv" | cut -c1-16) | train: $(cat "$exp/.train_done") | $decode_ckpt \
$(stat -c '%Y %s' "$decode_ckpt") | method=$1 decode_max_tokens=$decode_max_tokens decode_args=$decode_args"
    case "$1" in
        beam) sig+=" beam=$beam max_len_a=$max_len_a max_len_b=$max_len_b" ;;
        ctc_beam) sig+=" beam=$beam" ;;
        ctc_beam_lm) sig+=" lm_beam=$lm_beam lm_weight=$lm_weight lm_token_bonus=$lm_token_bonus lm: \
$(marker_of "$dumpdir/lm/.lm${lm_order}_options") $(stat -c '%Y %s' "$lm_file" 2>/dev/null || echo none)" ;;
    esac
    echo "$sig"
}
# The run was trained on the data the dump folder holds now (stages 2-3 redone since would decode
# with another vocabulary or other features).
check_trained_on_current_data() {
    local trained; trained=$(cat "$exp/.train_done")
    # (the second form: a run trained before the data checksums were recorded)
    [[ $trained == "$(data_id) "* || $trained == "$(marker_of "$dumpdir/.vocab_options") | train_config="* ]] \
        || die "$exp was trained on other data than $dumpdir holds now (stages 2-3 were redone): train under another \
--tag (or remove $exp), or pass --dumpdir of the data it was trained on"
}
lm_file=$dumpdir/lm/ngram$lm_order.lm.gz

if run_stage 6 "decode (${decode_method}, $(basename "$decode_ckpt") -> ${decode_dirs[*]:-})"; then
    [ -f "$decode_ckpt" ] || die "$decode_ckpt not found: run stages 4-5 first"
    [ -f "$exp/.train_done" ] || die "$exp: training has not finished: run stages 4-5 first"
    check_trained_on_current_data
    dev=$(device_flags "$python" "$use_gpu")
    # shellcheck disable=SC2206
    extra=($decode_args)
    if [[ " ${methods[*]} " == *" ctc_beam_lm "* ]]; then
        for f in $lm_text; do [ -f "$f" ] || die "--lm_text: $f not found"; done
        sig_lm="$(marker_of "$dumpdir/.vocab_options") | lm_order=$lm_order lm_text=$lm_text lm_max_sentences=$lm_max_sentences exclude=$valid_subsets $test_subsets"
        if [ -f "$lm_file" ] && stage_done "$dumpdir/lm/.lm${lm_order}_options" "$sig_lm"; then
            log "$lm_file is up to date; skipping"
        else
            rm -f "$dumpdir/lm/.lm${lm_order}_options"
            text_args=(); [ -z "$lm_text" ] || { text_args=(--text); for f in $lm_text; do text_args+=("$f"); done; }
            # shellcheck disable=SC2086
            "$python" -m sigma_plugin.asr.train_lm --data-dir "$dumpdir" --train-subsets $train_subsets \
                "${text_args[@]}" --exclude-subsets $valid_subsets $test_subsets --order "$lm_order" \
                --max-sentences "$lm_max_sentences" --out "$lm_file" || die "training the n-gram LM failed (see above)"
            mark_done "$dumpdir/lm/.lm${lm_order}_options" "$sig_lm"
        fi
    fi
    for i in "${!methods[@]}"; do
        method=${methods[$i]} decode_dir=${decode_dirs[$i]}
        mkdir -p "$decode_dir"
        for s in $test_subsets; do
            out=$decode_dir/$s/generate-$s.txt
            sig_dec=$(decode_signature "$method" "$s")
            if [ -f "$out" ] && stage_done "$decode_dir/$s/.decode_options" "$sig_dec"; then
                log "$out is up to date; skipping"; continue
            fi
            rm -f "$out" "$decode_dir/$s/.decode_options"
            if [ "$method" = beam ]; then
                tmp=$decode_dir/$s.tmp; rm -rf "$tmp"
                # shellcheck disable=SC2086
                "$bindir/fairseq-generate" "$dumpdir" --user-dir "$plugin_dir" --task speech_to_text \
                    --gen-subset "$s" --path "$decode_ckpt" --beam "$beam" --max-len-a "$max_len_a" \
                    --max-len-b "$max_len_b" --max-tokens "$decode_max_tokens" --required-batch-size-multiple 1 \
                    --results-path "$tmp" "${extra[@]}" $dev > "$decode_dir/decode-$s.log" 2>&1 \
                    || die "decoding $s failed; see $decode_dir/decode-$s.log"
                mkdir -p "$decode_dir/$s"
                mv "$tmp/generate-$s.txt" "$out"; rm -rf "$tmp"
            else
                ctc=(--decode-method greedy)
                [ "$method" = ctc_greedy ] || ctc=(--decode-method beam --beam "$beam")
                [ "$method" != ctc_beam_lm ] || ctc=(--decode-method beam --beam "$lm_beam" --lm-path "$lm_file" \
                    --lm-weight "$lm_weight" --lm-token-bonus "$lm_token_bonus")
                # shellcheck disable=SC2086
                "$python" -m sigma_plugin.asr.decode_ctc "$dumpdir" --user-dir "$plugin_dir" --task speech_to_text \
                    --gen-subset "$s" --path "$decode_ckpt" --max-tokens "$decode_max_tokens" "${ctc[@]}" \
                    --results-path "$decode_dir/$s" "${extra[@]}" $dev > "$decode_dir/decode-$s.log" 2>&1 \
                    || die "decoding $s failed; see $decode_dir/decode-$s.log"
            fi
            mark_done "$decode_dir/$s/.decode_options" "$sig_dec"
            log "$s ($method): $(grep -c '^D-' "$out") hypotheses -> $out"
        done
    done
fi

if run_stage 7 "score (WER/CER of $test_subsets, per decoding method and per voice)"; then
    for i in "${!methods[@]}"; do
        for s in $test_subsets; do
            marker=${decode_dirs[$i]}/$s/.decode_options sig_dec=$(decode_signature "${methods[$i]}" "$s")
            [ -f "${decode_dirs[$i]}/$s/generate-$s.txt" ] || die "${decode_dirs[$i]}/$s: not decoded: run stage 6 first"
            [ -f "$marker" ] && [ "$(cat "$marker")" = "$sig_dec" ] || die "${decode_dirs[$i]}/$s was decoded from \
another data set, checkpoint or decoding options than the current ones (was: $(marker_of "$marker"); now: $sig_dec): \
rerun stage 6"
        done
    done
    # shellcheck disable=SC2086
    "$python" -m sigma_plugin.asr.score --data-dir "$dumpdir" --decode-dir "${decode_dirs[@]}" \
        --subsets $test_subsets --speakers-root "$corpus_root" || die "scoring failed (see the message above)"
fi

# ---- 8 plot ----------------------------------------------------------------------------
if run_stage 8 "plot (loss, attention entropy, σ/γ)"; then
    need_config 8
    plot_stage
fi
log "done (stages $stage-$stop_stage)"
