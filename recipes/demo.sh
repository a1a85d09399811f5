#!/usr/bin/env bash
# The built-in demo (`make demo`): on a Debian/Ubuntu machine with no GPU and no corpus downloads
# from the web, build small real corpora from Debian packages (translation catalogs; speech from
# espeak-ng, espeak, flite and festival voices, dev/test voices never heard in training), train
# small post-LN σReparam MT and ASR models with LARS (SGD with momentum and a layer-wise trust
# ratio) and no warmup, score them (sacreBLEU BLEU/chrF; WER/CER, per voice) and plot attention
# entropy; and a small post-LN language model on Debian manuals (Adam, no warmup), σReparam beside
# the same stock post-LN model, scored by perplexity.
#   bash recipes/demo.sh [--workdir demo] [--only mt|lm|asr]
# The terminal shows stage headers, progress bars and the final summary; each step's full output
# goes to WORKDIR/logs/STEP.log (named at the end, and on an error with the log's last lines).
# Every step resumes: rerunning after an interruption continues where it stopped.
set -euo pipefail
recipe_name=demo.sh
recipe_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
project_root=$(dirname "$recipe_dir")
. "$recipe_dir/lib.sh"

workdir=$project_root/demo
only=all
python=${PYTHON:-python}
options=(workdir only python)
parse_options "$@"
case "$only" in all|mt|lm|asr) ;; *) die "--only must be mt, lm, asr or all (got '$only')" ;; esac
mkdir -p "$workdir"; workdir=$(cd "$workdir" && pwd)
export PYTHON=$python PYTHONPATH=$project_root${PYTHONPATH:+:$PYTHONPATH}
command -v apt-get >/dev/null && command -v dpkg >/dev/null || die "the demo builds its corpora from \
Debian packages and needs apt-get and dpkg (Debian/Ubuntu). Elsewhere, run the recipes on prepared data: \
L10N_DATA=/path/with/{train,valid,test}.{en,de} egs/l10n_en_de/mt1/run.sh, egs/doc_en/lm1/run.sh --text_dir DIR \
and TTS_ROOT=/librispeech/layout egs/tts_en/asr1/run.sh"

t0=$(date +%s); declare -A took logfile
logdir=$workdir/logs
mkdir -p "$logdir"
timed() {  # NAME LOG CMD...: run with its output in WORKDIR/logs/LOG.log (filtered on the terminal), timed
    local name=$1 lf=$logdir/$2.log; shift 2; local t; t=$(date +%s)
    log ">>> $name (log: $lf)"
    printf '\n==== %s: %s\n' "$(date '+%Y-%m-%d %H:%M:%S')" "$*" >> "$lf"
    local rc=0
    "$@" 2>&1 | "$python" -m sigma_plugin.recipe.demo_summary --console "$lf" || rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "---- last lines of $lf:" >&2; tail -n 15 "$lf" >&2
        die "$name failed; full log: $lf"
    fi
    took[$name]=$(( $(date +%s) - t )); logfile[$name]=$lf
    log "<<< $name: ${took[$name]} s"
}

mt_egs=$project_root/egs/l10n_en_de/mt1
lm_egs=$project_root/egs/doc_en/lm1
asr_egs=$project_root/egs/tts_en/asr1
if [ "$only" = all ] || [ "$only" = mt ]; then
    export L10N_DATA=debian L10N_WORKDIR=$workdir/downloads/l10n
    timed "MT corpus + prep (stages 1-4)" mt_prep "$mt_egs/run.sh" --datadir "$workdir/mt/data" --expdir "$workdir/mt/exp" \
        --vocab_size 2000 --max_len 8 --filter_splits train,valid,test --stop_stage 4
    timed "MT train (stage 5)" mt_train "$mt_egs/run.sh" --datadir "$workdir/mt/data" --expdir "$workdir/mt/exp" \
        --train_config "$mt_egs/conf/train_demo.yaml" --stage 5 --stop_stage 5
    timed "MT average, decode, score, plot (stages 6-9)" mt_score "$mt_egs/run.sh" --datadir "$workdir/mt/data" \
        --expdir "$workdir/mt/exp" --train_config "$mt_egs/conf/train_demo.yaml" --stage 6 --n_average 3 \
        --test_sets test --beam 4 --decode_args "--max-len-a 1.2 --max-len-b 10"
fi
if [ "$only" = all ] || [ "$only" = lm ]; then
    # seven manuals with much prose for their size (8 MB of .debs, about 2 million words)
    export DOC_EN_DATA=debian DOC_EN_WORKDIR=$workdir/downloads/doc_en \
        DOC_EN_PACKAGES=postgresql-doc-15,exim4-doc-html,libreoffice-help-en-us,git-doc,debian-reference-en,debian-faq,maint-guide
    lm=(--datadir "$workdir/lm/data" --expdir "$workdir/lm/exp" --vocab_size 2000)
    timed "LM corpus + prep (stages 1-3)" lm_prep "$lm_egs/run.sh" "${lm[@]}" --stop_stage 3
    for conf in train_demo train_demo_stock_postln; do
        timed "LM $conf (stages 4-7)" "lm_$conf" "$lm_egs/run.sh" "${lm[@]}" --stage 4 \
            --train_config "$lm_egs/conf/$conf.yaml" --n_average 3
    done
fi
if [ "$only" = all ] || [ "$only" = asr ]; then
    export TTS_ROOT=$workdir/LibriSpeech
    l10n=$workdir/downloads/l10n
    # the sentences: the English side of the MT corpus (built here when the MT half did not run);
    # its valid/test sentences never occur in the speech
    timed "ASR sentences (English of the l10n corpus)" asr_text "$python" -m sigma_plugin.corpus.l10n \
        --workdir "$l10n" --out "$l10n/corpus_de" --tgt de
    timed "ASR corpus (espeak-ng/espeak/flite/festival speech)" asr_corpus "$python" -m sigma_plugin.corpus.tts \
        --workdir "$workdir/downloads/tts" --root "$TTS_ROOT" --sentences "$l10n/corpus_de/train.en" \
        --exclude "$l10n/corpus_de/valid.en" --exclude "$l10n/corpus_de/test.en" \
        --n-train 2500 --n-dev 200 --n-test 200 --nj "$(nproc)"
    timed "ASR recipe (fbank -> WER)" asr_recipe "$asr_egs/run.sh" --dumpdir "$workdir/asr/dump" --expdir "$workdir/asr/exp" \
        --train_config "$asr_egs/conf/train_demo.yaml" --vocab_type char --n_average 0 \
        --train_subsets train-tts --valid_subsets dev-tts --test_subsets "dev-tts test-tts" --nj "$(nproc)" \
        --lm_text "$l10n/corpus_de/train.en"
fi

log "==== summary ($(( $(date +%s) - t0 )) s in all) ===="
for k in "${!took[@]}"; do printf '  %-52s %5d s   %s\n' "$k" "${took[$k]}" "${logfile[$k]}"; done | sort >&2
"$python" -m sigma_plugin.recipe.demo_summary --workdir "$workdir"
