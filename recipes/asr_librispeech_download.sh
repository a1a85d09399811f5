#!/usr/bin/env bash
# Download LibriSpeech subsets from OpenSLR (resource 12) and unpack them as DEST/<subset>/.
#   usage: asr_librispeech_download.sh DEST SUBSET...
# A subset is complete when DEST/<subset>/.complete exists; reruns skip it and resume a
# partial download (curl -C - / wget -c). LIBRISPEECH_URL overrides the mirror
# (e.g. https://us.openslr.org/resources/12); KEEP_TARBALLS=1 keeps the .tar.gz files.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 DEST SUBSET..." >&2; exit 2; }
url=${LIBRISPEECH_URL:-https://www.openslr.org/resources/12}
dest=$1; shift
known=" dev-clean dev-other test-clean test-other train-clean-100 train-clean-360 train-other-500 "
mkdir -p "$dest"
for subset in "$@"; do
    [[ $known == *" $subset "* ]] || { echo "$0: '$subset' is not a LibriSpeech subset ($known)" >&2; exit 2; }
    if [ -f "$dest/$subset/.complete" ]; then
        echo "$subset: already in $dest" >&2; continue
    fi
    tgz=$dest/$subset.tar.gz
    if [ ! -f "$tgz" ]; then
        echo "$subset: downloading $url/$subset.tar.gz" >&2
        if command -v curl >/dev/null; then
            curl -fL -C - -o "$tgz.part" "$url/$subset.tar.gz"
        else
            wget -c -O "$tgz.part" "$url/$subset.tar.gz"
        fi
        mv "$tgz.part" "$tgz"
    fi
    # The archive holds LibriSpeech/<subset>/...; unpack aside, then move into place.
    tmp=$dest/.unpack-$subset
    rm -rf "$tmp"; mkdir -p "$tmp"
    echo "$subset: unpacking" >&2
    tar -xzf "$tgz" -C "$tmp"
    [ -d "$tmp/LibriSpeech/$subset" ] || { echo "$0: $tgz has no LibriSpeech/$subset folder" >&2; exit 1; }
    rm -rf "${dest:?}/$subset"
    mv "$tmp/LibriSpeech/$subset" "$dest/$subset"
    rm -rf "$tmp"
    touch "$dest/$subset/.complete"
    [ "${KEEP_TARBALLS:-0}" = 1 ] || rm -f "$tgz"
done
