# Corpus location for this recipe (set TTS_ROOT before running run.sh): a LibriSpeech-layout folder
# holding train-tts/ and dev-tts/, e.g. the one `python -m sigma_plugin.corpus.tts` builds (as
# recipes/demo.sh does). No default: run.sh stops with a message when it is unset.
TTS_ROOT=${TTS_ROOT:-}
if [ -z "$TTS_ROOT" ]; then
    echo "egs/tts_en/asr1/db.sh: TTS_ROOT is not set: set TTS_ROOT=/path/to/corpus (LibriSpeech layout with train-tts/ and dev-tts/), or build one with 'python -m sigma_plugin.corpus.tts --root DIR' (see recipes/demo.sh)" >&2
    exit 2
fi
