#!/usr/bin/env bash
# Stage 1 of egs/wmt17_en_de/mt1: OUTDIR SRC TGT -> OUTDIR/{train,valid,test}.{SRC,TGT}
# The DeepNet / σReparam setting: WMT'17 En-De training data (Europarl v7, Common Crawl,
# News Commentary v12), newstest2013 as valid and newstest2014 (full) as test; the test
# sets come through sacreBLEU's own downloader, the references its signature names.
set -euo pipefail
out=$1 src=$2 tgt=$3
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/db.sh"
python=${PYTHON:-python}
case "$src-$tgt" in en-de|de-en) ;; *) echo "local/data.sh: WMT'17 here is en-de or de-en, got $src-$tgt" >&2; exit 2 ;; esac
mkdir -p "$WMT17_DIR"

fetch() {  # URL: download (resumable) and unpack once; a marker records completion
    local url=$1 name; name=$(basename "$1")
    [ -f "$WMT17_DIR/.$name.done" ] && return 0
    echo "local/data.sh: downloading $url" >&2
    if command -v wget >/dev/null; then wget -q -c -O "$WMT17_DIR/$name" "$url"
    else curl -fsSL -C - -o "$WMT17_DIR/$name" "$url"; fi
    tar -xzf "$WMT17_DIR/$name" -C "$WMT17_DIR"
    touch "$WMT17_DIR/.$name.done"
}
fetch http://statmt.org/wmt13/training-parallel-europarl-v7.tgz
fetch http://statmt.org/wmt13/training-parallel-commoncrawl.tgz
fetch http://data.statmt.org/wmt17/translation-task/training-parallel-nc-v12.tgz

corpora=("$WMT17_DIR/training/europarl-v7.de-en" "$WMT17_DIR/commoncrawl.de-en" "$WMT17_DIR/training/news-commentary-v12.de-en")
for l in $src $tgt; do
    for c in "${corpora[@]}"; do [ -s "$c.$l" ] || { echo "local/data.sh: $c.$l missing after unpacking" >&2; exit 2; }; done
    cat "${corpora[@]/%/.$l}" > "$out/train.$l"
done
sacrebleu=$(dirname "$(command -v "$python")")/sacrebleu
"$sacrebleu" -t wmt13 -l "$src-$tgt" --echo src > "$out/valid.$src"
"$sacrebleu" -t wmt13 -l "$src-$tgt" --echo ref > "$out/valid.$tgt"
"$sacrebleu" -t wmt14/full -l "$src-$tgt" --echo src > "$out/test.$src"
"$sacrebleu" -t wmt14/full -l "$src-$tgt" --echo ref > "$out/test.$tgt"
