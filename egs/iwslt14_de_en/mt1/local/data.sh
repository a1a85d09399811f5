#!/usr/bin/env bash
# Stage 1 of egs/iwslt14_de_en/mt1: OUTDIR SRC TGT -> OUTDIR/{train,valid,test}.{SRC,TGT}
# The sources and holding-out rule of fairseq's prepare-iwslt14.sh: TED talk training text without
# its XML lines, every 23rd line held out as valid, and dev2010 + tst2010-2012 (+ TEDX dev2012)
# concatenated as test. Not its Moses tokenization, length filter or lowercasing (the recipe cleans
# and encodes the raw text itself and scores cased, detokenized sacreBLEU): scores are not
# comparable with published IWSLT'14 numbers (README.md).
set -euo pipefail
out=$1 src=$2 tgt=$3
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/db.sh"
case "$src-$tgt" in de-en|en-de) ;; *) echo "local/data.sh: IWSLT'14 here is de-en or en-de, got $src-$tgt" >&2; exit 2 ;; esac
mkdir -p "$IWSLT14_DIR"
if [ ! -f "$IWSLT14_DIR/.done" ]; then
    echo "local/data.sh: downloading $IWSLT14_URL" >&2
    if command -v wget >/dev/null; then wget -q -c -O "$IWSLT14_DIR/de-en.tgz" "$IWSLT14_URL"
    else curl -fsSL -C - -o "$IWSLT14_DIR/de-en.tgz" "$IWSLT14_URL"; fi
    tar -xzf "$IWSLT14_DIR/de-en.tgz" -C "$IWSLT14_DIR"
    touch "$IWSLT14_DIR/.done"
fi
d=$IWSLT14_DIR/de-en
for l in de en; do
    [ -s "$d/train.tags.de-en.$l" ] || { echo "local/data.sh: $d/train.tags.de-en.$l missing after unpacking" >&2; exit 2; }
    grep -v -e '<url>' -e '<talkid>' -e '<keywords>' -e '<speaker>' -e '<reviewer' -e '<translator' "$d/train.tags.de-en.$l" \
        | sed -e 's/<title>//g' -e 's/<\/title>//g' -e 's/<description>//g' -e 's/<\/description>//g' > "$out/all.$l"
    awk 'NR % 23 == 0' "$out/all.$l" > "$out/valid.$l"
    awk 'NR % 23 != 0' "$out/all.$l" > "$out/train.$l"
    rm "$out/all.$l"
    for set in IWSLT14.TED.dev2010 IWSLT14.TEDX.dev2012 IWSLT14.TED.tst2010 IWSLT14.TED.tst2011 IWSLT14.TED.tst2012; do
        grep '<seg id' "$d/$set.de-en.$l.xml" | sed -e 's/<seg id="[0-9]*">\s*//g' -e 's/\s*<\/seg>\s*//g' -e "s/’/'/g"
    done > "$out/test.$l"
done
