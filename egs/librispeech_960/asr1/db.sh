# Corpus location for this recipe. Override by exporting LIBRISPEECH before running run.sh.
# Stage 1 downloads the missing subsets from OpenSLR (resource 12) into it (~60 GB for the
# three training sets plus the dev/test sets; more while unpacking).
LIBRISPEECH=${LIBRISPEECH:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/downloads/LibriSpeech}
