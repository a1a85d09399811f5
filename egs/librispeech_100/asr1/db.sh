# Corpus location for this recipe. Override by exporting LIBRISPEECH before running run.sh.
# Stage 1 downloads the missing subsets from OpenSLR (resource 12) into it (~6.3 GB for
# train-clean-100 plus the dev/test sets; ~1.5x that while unpacking).
LIBRISPEECH=${LIBRISPEECH:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/downloads/LibriSpeech}
