#!/usr/bin/env bash
# The built-in demo (`make demo`): on a Debian/Ubuntu machine with no GPU and no corpus downloads
# from the web, build small real corpora from Debian packages (translation catalogs; speech from
# espeak-ng/flite voices), train small post-LN σReparam MT and ASR models with LARS (SGD with
# momentum and a layer-wise trust ratio) and no warmup, score them (sacreBLEU BLEU/chrF; WER/CER)
# and plot attention entropy.
#   bash recipes/demo.sh [--workdir demo] [--only mt|asr]
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
case "$only" in all|mt|asr) ;; *) die "--only must be mt, asr or all (got '$only')" ;; esac
mkdir -p "$workdir"; workdir=$(cd "$workdir" && pwd)
export PYTHON=$python PYTHONPATH=$project_root${PYTHONPATH:+:$PYTHONPATH}
command -v apt-get >/dev/null && command -v dpkg >/dev/null || die "the demo builds its corpora from \
Debian packages and needs apt-get and dpkg (Debian/Ubuntu). Elsewhere, run the recipes on prepared data: \
L10N_DATA=/path/with/{train,valid,test}.{en,de} egs/l10n_en_de/mt1/run.sh and TTS_ROOT=/librispeech/layout egs/tts_en/asr1/run.sh"

t0=$(date +%s); declare -A took
timed() {  # NAME CMD...: run, record the wall time
    local name=$1; shift; local t=$(date +%s)
    log ">>> $name"
    "$@"
    took[$name]=$(( $(date +%s) - t ))
    log "<<< $name: ${took[$name]} s"
}

mt_egs=$project_root/egs/l10n_en_de/mt1
asr_egs=$project_root/egs/tts_en/asr1
if [ "$only" != asr ]; then
    export L10N_DATA=debian L10N_WORKDIR=$workdir/downloads/l10n
    timed "MT corpus + prep (stages 1-4)" "$mt_egs/run.sh" --datadir "$workdir/mt/data" --expdir "$workdir/mt/exp" \
        --vocab_size 2000 --max_len 8 --filter_splits train,valid,test --stop_stage 4
    timed "MT train (stage 5)" "$mt_egs/run.sh" --datadir "$workdir/mt/data" --expdir "$workdir/mt/exp" \
        --train_config "$mt_egs/conf/train_demo.yaml" --stage 5 --stop_stage 5
    timed "MT average, decode, score, plot (stages 6-9)" "$mt_egs/run.sh" --datadir "$workdir/mt/data" \
        --expdir "$workdir/mt/exp" --train_config "$mt_egs/conf/train_demo.yaml" --stage 6 --n_average 3 \
        --test_sets test --beam 4 --decode_args "--max-len-a 1.2 --max-len-b 10"
fi
if [ "$only" != mt ]; then
    export TTS_ROOT=$workdir/LibriSpeech
    timed "ASR corpus (espeak-ng/flite speech)" "$python" -m sigma_plugin.corpus.tts --workdir "$workdir/downloads/tts" \
        --root "$TTS_ROOT" --sentences "$workdir/downloads/l10n/corpus_de/train.en" \
        --n-train 800 --n-dev 100 --n-test 100 --nj "$(nproc)"
    timed "ASR recipe (fbank -> WER)" "$asr_egs/run.sh" --dumpdir "$workdir/asr/dump" --expdir "$workdir/asr/exp" \
        --train_config "$asr_egs/conf/train_demo.yaml" --vocab_type char --n_average 3 \
        --train_subsets train-tts --valid_subsets dev-tts --test_subsets "dev-tts test-tts" --nj "$(nproc)"
fi

log "==== summary ($(( $(date +%s) - t0 )) s in all) ===="
for k in "${!took[@]}"; do printf '  %-48s %5d s\n' "$k" "${took[$k]}"; done | sort >&2
"$python" -m sigma_plugin.recipe.demo_summary --workdir "$workdir"
