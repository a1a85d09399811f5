"""Extract hypotheses from fairseq-generate output in corpus order.

    python -m sigma_plugin.recipe.hyps --generate-log gen.out --output test.hyp [--expect N] [--field D]

``D-`` lines hold the detokenised hypothesis (with --post-process sentencepiece), ``H-``
lines the tokenised one. fairseq prints sentences in batch order; this sorts by id. With
``--nbest N`` fairseq prints N hypotheses per sentence: the one with the highest score (the
first of the highest, as fairseq prints them best first) is kept.
"""
import argparse
import sys
from pathlib import Path

from sigma_plugin.util import atomic_open, fail, run_cli


def extract(log_path: Path, field: str = "D"):
    if not log_path.is_file():
        fail(f"{log_path}: fairseq-generate output not found")
    best = {}  # id -> (score, text)
    with open(log_path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if line.startswith(f"{field}-"):
                head, score, text = (line.rstrip("\n").split("\t") + ["", ""])[:3]
                try:
                    idx, score = int(head[len(field) + 1:]), float(score)
                except ValueError:
                    fail(f"{log_path}:{lineno}: expected '{field}-<id>\\tscore\\ttext', got {line.rstrip()!r}")
                if idx not in best or score > best[idx][0]:
                    best[idx] = (score, text)
    return {idx: text for idx, (_score, text) in best.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--generate-log", required=True, type=Path)
    ap.add_argument("--output", required=True, type=Path)
    ap.add_argument("--field", default="D", choices=["D", "H"])
    ap.add_argument("--expect", type=int, help="number of source sentences; missing ids are an error")
    args = ap.parse_args(argv)
    hyps = extract(args.generate_log, args.field)
    n = args.expect if args.expect is not None else (max(hyps) + 1 if hyps else 0)
    missing = [i for i in range(n) if i not in hyps]
    if missing:
        fail(f"{args.generate_log}: no hypothesis for {len(missing)} of {n} sentences (first ids: "
             f"{missing[:5]}); were they skipped as too long (--max-len-a/b, --skip-invalid-size-inputs-valid-test)?")
    with atomic_open(args.output) as f:
        for i in range(n):
            f.write(hyps[i] + "\n")
    print(f"hyps: {n} hypotheses -> {args.output}")


if __name__ == "__main__":
    sys.exit(run_cli(None, main))
