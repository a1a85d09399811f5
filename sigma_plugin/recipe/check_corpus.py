"""Check a prepared parallel corpus before the recipe marks it complete: every SPLIT.{src,tgt}
exists, is non-empty, both sides have the same number of lines, and the text is UTF-8.

    python -m sigma_plugin.recipe.check_corpus --prefix data/raw.tmp --src en --tgt de --splits train,valid,test
"""
import argparse
import sys
from pathlib import Path

from sigma_plugin.util import run_cli

from .io import check_parallel, check_utf8


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prefix", required=True, type=Path, help="folder with SPLIT.LANG files")
    ap.add_argument("--src", required=True)
    ap.add_argument("--tgt", required=True)
    ap.add_argument("--splits", default="train,valid,test")
    args = ap.parse_args(argv)
    counts = []
    for split in args.splits.split(","):
        n = check_parallel(args.prefix / split, (args.src, args.tgt))
        for lang in (args.src, args.tgt):
            check_utf8(args.prefix / f"{split}.{lang}")
        counts.append(f"{split} {n}")
    print(f"corpus: {', '.join(counts)} line pairs, UTF-8")


if __name__ == "__main__":
    sys.exit(run_cli(None, main))
