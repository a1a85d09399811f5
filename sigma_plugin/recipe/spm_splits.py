"""Encode the cleaned parallel splits with the SentencePiece model, bounded in length: fairseq
stops on a sentence longer than the model's positions, so no line may exceed --max-pieces.
Pairs of the --drop-splits (training) with a side over the bound are dropped; lines of the other
splits (valid/test) are cut to the bound, so that every line is still translated and scored.
Both are counted and printed.

    python -m sigma_plugin.recipe.spm_splits --model data/spm/spm.model --in-prefix data/clean \\
        --outdir data/spm --src en --tgt de --splits train,valid,test [--max-pieces 250] [--drop-splits train]

Writes OUTDIR/SPLIT.{src,tgt} (pieces separated by spaces) and OUTDIR/encode_stats.json.
"""
import argparse
import json
import sys
from pathlib import Path

from sigma_plugin.util import atomic_open, fail, run_cli

from .io import check_parallel
from .spm import load


def encode_split(sp, in_prefix: Path, out_prefix: Path, src: str, tgt: str, max_pieces: int, drop: bool) -> dict:
    check_parallel(in_prefix, (src, tgt))
    stats = {"lines_in": 0, "lines_out": 0, "dropped": 0, "cut": 0, "longest": 0}
    with open(f"{in_prefix}.{src}", encoding="utf-8") as fs, open(f"{in_prefix}.{tgt}", encoding="utf-8") as ft, \
            atomic_open(f"{out_prefix}.{src}") as os_, atomic_open(f"{out_prefix}.{tgt}") as ot:
        for a, b in zip(fs, ft):
            stats["lines_in"] += 1
            pa, pb = sp.encode(a.strip(), out_type=str), sp.encode(b.strip(), out_type=str)
            longest = max(len(pa), len(pb))
            stats["longest"] = max(stats["longest"], longest)
            if longest > max_pieces:
                if drop:
                    stats["dropped"] += 1
                    continue
                stats["cut"] += 1
                pa, pb = pa[:max_pieces], pb[:max_pieces]
            os_.write(" ".join(pa) + "\n")
            ot.write(" ".join(pb) + "\n")
            stats["lines_out"] += 1
    if stats["lines_out"] == 0:
        fail(f"{in_prefix}.{src}/{tgt}: every pair is longer than --max-pieces {max_pieces}")
    return stats


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, type=Path)
    ap.add_argument("--in-prefix", required=True, type=Path, help="folder with SPLIT.LANG text files")
    ap.add_argument("--outdir", required=True, type=Path)
    ap.add_argument("--src", required=True)
    ap.add_argument("--tgt", required=True)
    ap.add_argument("--splits", default="train,valid,test")
    ap.add_argument("--max-pieces", type=int, default=250, help="most pieces per side of a line")
    ap.add_argument("--drop-splits", default="train", help="splits whose too-long pairs are dropped (others: cut)")
    args = ap.parse_args(argv)
    if args.max_pieces < 1:
        fail(f"--max-pieces must be >= 1, got {args.max_pieces}")
    sp = load(args.model)
    drop = set(args.drop_splits.split(","))
    stats = {}
    for split in args.splits.split(","):
        st = stats[split] = encode_split(sp, args.in_prefix / split, args.outdir / split, args.src, args.tgt,
                                         args.max_pieces, split in drop)
        note = (f"; dropped {st['dropped']} pair(s) longer than {args.max_pieces} pieces" if st["dropped"] else "") + \
               (f"; cut {st['cut']} line(s) to {args.max_pieces} pieces" if st["cut"] else "")
        print(f"spm {split}: {st['lines_in']} -> {st['lines_out']} lines (longest {st['longest']} pieces){note}")
    with atomic_open(args.outdir / "encode_stats.json") as f:
        json.dump(stats, f, indent=1)


if __name__ == "__main__":
    sys.exit(run_cli(None, main))
