"""Normalise and clean parallel text: NFKC, control characters removed, whitespace collapsed;
training pairs that are empty, too long or too unbalanced are dropped (valid/test are kept
line for line so that scores stay comparable, unless --filter-splits names them). Input that is
not UTF-8 stops with file:line. OUT_PREFIX/SPLIT.ids lists the raw line numbers kept (1-based),
so that hypotheses can be scored against the raw references.

    python -m sigma_plugin.recipe.clean --in-prefix data/raw --out-prefix data/clean \\
        --src en --tgt de --splits train,valid,test [--max-len 200] [--max-ratio 3]
"""
import argparse
import json
import re
import sys
import unicodedata
from pathlib import Path

from sigma_plugin.util import atomic_open, fail, run_cli

from .io import check_parallel, decode_line

_CONTROL = re.compile(r"[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b\ufeff]")
_SPACE = re.compile(r"\s+")


def normalise(line: str) -> str:
    line = unicodedata.normalize("NFKC", line)
    line = _CONTROL.sub(" ", line)
    return _SPACE.sub(" ", line).strip()


def keep_pair(src: str, tgt: str, max_len: int, max_ratio: float) -> bool:
    ns, nt = len(src.split()), len(tgt.split())
    if ns == 0 or nt == 0 or ns > max_len or nt > max_len:
        return False
    return max(ns, nt) / min(ns, nt) <= max_ratio or max(ns, nt) <= 3


def clean_split(in_prefix: Path, out_prefix: Path, src: str, tgt: str, filter_pairs: bool,
                max_len: int, max_ratio: float) -> dict:
    n_in = check_parallel(in_prefix, (src, tgt))
    kept = 0
    src_path, tgt_path = f"{in_prefix}.{src}", f"{in_prefix}.{tgt}"
    with open(src_path, "rb") as fs, open(tgt_path, "rb") as ft, \
            atomic_open(f"{out_prefix}.{src}") as os_, atomic_open(f"{out_prefix}.{tgt}") as ot, \
            atomic_open(f"{out_prefix}.ids") as oi:
        for lineno, (a, b) in enumerate(zip(fs, ft), 1):
            a, b = normalise(decode_line(a, src_path, lineno)), normalise(decode_line(b, tgt_path, lineno))
            if filter_pairs and not keep_pair(a, b, max_len, max_ratio):
                continue
            os_.write(a + "\n")
            ot.write(b + "\n")
            oi.write(f"{lineno}\n")
            kept += 1
    if kept == 0:
        fail(f"{in_prefix}.{src}/{tgt}: no pair survived cleaning (max-len {max_len}, max-ratio {max_ratio})")
    return {"lines_in": n_in, "lines_out": kept}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--in-prefix", required=True, type=Path, help="folder with SPLIT.LANG files")
    ap.add_argument("--out-prefix", required=True, type=Path)
    ap.add_argument("--src", required=True)
    ap.add_argument("--tgt", required=True)
    ap.add_argument("--splits", default="train,valid,test")
    ap.add_argument("--filter-splits", default="train", help="splits whose bad pairs are dropped")
    ap.add_argument("--max-len", type=int, default=200, help="max words per side (filtered splits)")
    ap.add_argument("--max-ratio", type=float, default=3.0, help="max length ratio (filtered splits)")
    args = ap.parse_args(argv)
    stats = {}
    filtered = set(args.filter_splits.split(","))
    for split in args.splits.split(","):
        stats[split] = clean_split(args.in_prefix / split, args.out_prefix / split, args.src, args.tgt,
                                   split in filtered, args.max_len, args.max_ratio)
        print(f"clean {split}: {stats[split]['lines_in']} -> {stats[split]['lines_out']} pairs")
    with atomic_open(args.out_prefix / "clean_stats.json") as f:
        json.dump(stats, f, indent=1)


if __name__ == "__main__":
    sys.exit(run_cli(None, main))
