# Corpus location for this recipe. Override by exporting TTS_ROOT before running run.sh.
# Default: the tts_en corpus next to the project (<project root>/../shared/data/tts_en).
_project_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
TTS_ROOT=${TTS_ROOT:-$_project_root/../shared/data/tts_en}
