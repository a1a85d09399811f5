# Corpus location for this recipe: a LibriSpeech-layout folder holding train-tts/ and dev-tts/, e.g.
# the one `python -m sigma_plugin.corpus.tts` builds (as recipes/demo.sh does). Set TTS_ROOT before
# running run.sh, or pass --corpus_root DIR (which wins). No default: run.sh stops with a message
# when neither is given.
TTS_ROOT=${TTS_ROOT:-}

# check_corpus_root "$@" (run.sh's options): TTS_ROOT is set or the options give --corpus_root.
check_corpus_root() {
    local a
    for a in "$@"; do
        case "$a" in --corpus_root|--corpus-root) return 0 ;; esac
    done
    [ -z "$TTS_ROOT" ] || return 0
    echo "egs/tts_en/asr1/db.sh: TTS_ROOT is not set: set TTS_ROOT=/path/to/corpus (LibriSpeech layout with train-tts/ and dev-tts/) or pass --corpus_root DIR, or build one with 'python -m sigma_plugin.corpus.tts --root DIR' (see recipes/demo.sh)" >&2
    exit 2
}
