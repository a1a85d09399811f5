#!/usr/bin/env bash
# Stage 1 of egs/wikitext103/lm1: OUTDIR -> OUTDIR/{train,valid,test}.txt, copies of
# $WIKITEXT103/wiki.{train,valid,test}.tokens (the text as fairseq's example binarizes it).
set -euo pipefail
out=$1
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/db.sh"

hint="set WIKITEXT103 to the folder of wiki.{train,valid,test}.tokens (wikitext-103-v1.zip unpacked; fairseq's examples/language_model/prepare-wikitext-103.sh makes it)"
[ -n "$WIKITEXT103" ] || { echo "local/data.sh: WIKITEXT103 is not set: $hint" >&2; exit 2; }
[ -d "$WIKITEXT103" ] || { echo "local/data.sh: WIKITEXT103=$WIKITEXT103 is not a folder: $hint" >&2; exit 2; }
for split in train valid test; do
    f=$WIKITEXT103/wiki.$split.tokens
    [ -s "$f" ] || { echo "local/data.sh: $f is missing or empty: $hint" >&2; exit 2; }
    cp "$f" "$out/$split.txt"
done
