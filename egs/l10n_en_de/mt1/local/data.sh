#!/usr/bin/env bash
# Stage 1 of egs/l10n_en_de/mt1: OUTDIR SRC TGT -> OUTDIR/{train,valid,test}.{SRC,TGT}
# From $L10N_DATA (a prepared folder) or, when it is "debian", built from Debian packages.
# A folder without test.* has its valid split carved in two: first half valid, rest test.
set -euo pipefail
out=$1 src=$2 tgt=$3
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/db.sh"
python=${PYTHON:-python}

if [ -z "$L10N_DATA" ]; then
    echo "local/data.sh: L10N_DATA is not set: set L10N_DATA=/folder/with/{train,valid,test}.{$src,$tgt} or use the Debian build (L10N_DATA=debian)" >&2
    exit 2
fi
if [ "$L10N_DATA" != debian ] && [ ! -d "$L10N_DATA" ]; then
    echo "local/data.sh: L10N_DATA=$L10N_DATA is not a folder: set it to a folder with {train,valid,test}.{$src,$tgt} or use the Debian build (L10N_DATA=debian)" >&2
    exit 2
fi
if [ "$L10N_DATA" = debian ]; then
    [ "$src" = en ] || { echo "local/data.sh: the Debian build makes en->XX pairs; --src must be en (got $src)" >&2; exit 2; }
    "$python" -m sigma_plugin.corpus.l10n --workdir "$L10N_WORKDIR" --out "$L10N_WORKDIR/corpus_$tgt" --tgt "$tgt"
    L10N_DATA=$L10N_WORKDIR/corpus_$tgt
fi
for split in train valid; do
    for l in $src $tgt; do
        [ -s "$L10N_DATA/$split.$l" ] || { echo "local/data.sh: $L10N_DATA/$split.$l is missing or empty (set L10N_DATA to a folder with {train,valid,test}.{$src,$tgt})" >&2; exit 2; }
    done
done
cp "$L10N_DATA/train.$src" "$L10N_DATA/train.$tgt" "$out/"
if [ -s "$L10N_DATA/test.$src" ] && [ -s "$L10N_DATA/test.$tgt" ]; then
    cp "$L10N_DATA/valid.$src" "$L10N_DATA/valid.$tgt" "$L10N_DATA/test.$src" "$L10N_DATA/test.$tgt" "$out/"
else
    for l in $src $tgt; do
        n=$(wc -l < "$L10N_DATA/valid.$l"); half=$(( n / 2 ))
        head -n "$half" "$L10N_DATA/valid.$l" > "$out/valid.$l"
        tail -n +"$(( half + 1 ))" "$L10N_DATA/valid.$l" > "$out/test.$l"
    done
    echo "local/data.sh: no test split in $L10N_DATA: valid carved into valid ($half) + test" >&2
fi
