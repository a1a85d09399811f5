#!/usr/bin/env bash
# Stage 1 of egs/doc_en/lm1: OUTDIR -> OUTDIR/{train,valid,test}.txt
# From $DOC_EN_DATA (a prepared folder) or, when it is "debian", built from Debian packages
# (python -m sigma_plugin.corpus.doc_en; resumable, reuses a complete build).
set -euo pipefail
out=$1
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/db.sh"
python=${PYTHON:-python}

hint="set DOC_EN_DATA=/folder/with/{train,valid,test}.txt, build it from Debian packages (DOC_EN_DATA=debian), or pass --text_dir DIR to run.sh"
if [ -z "$DOC_EN_DATA" ]; then
    echo "local/data.sh: DOC_EN_DATA is not set: $hint" >&2; exit 2
fi
if [ "$DOC_EN_DATA" != debian ] && [ ! -d "$DOC_EN_DATA" ]; then
    echo "local/data.sh: DOC_EN_DATA=$DOC_EN_DATA is not a folder: $hint" >&2; exit 2
fi
if [ "$DOC_EN_DATA" = debian ]; then
    # one output folder per choice of documents, so that builds of other choices sit side by side
    name=corpus${DOC_EN_MAX_DOCS:+_max$DOC_EN_MAX_DOCS}
    [ -z "$DOC_EN_PACKAGES" ] || name=${name}_packages$(printf '%s' "$DOC_EN_PACKAGES" | sha256sum | cut -c1-8)
    "$python" -m sigma_plugin.corpus.doc_en --workdir "$DOC_EN_WORKDIR" --out "$DOC_EN_WORKDIR/$name" \
        ${DOC_EN_MAX_DOCS:+--max-docs "$DOC_EN_MAX_DOCS"} ${DOC_EN_PACKAGES:+--packages "$DOC_EN_PACKAGES"}
    DOC_EN_DATA=$DOC_EN_WORKDIR/$name
fi
for split in train valid test; do
    [ -s "$DOC_EN_DATA/$split.txt" ] || { echo "local/data.sh: $DOC_EN_DATA/$split.txt is missing or empty: $hint" >&2; exit 2; }
done
cp "$DOC_EN_DATA/train.txt" "$DOC_EN_DATA/valid.txt" "$DOC_EN_DATA/test.txt" "$out/"
