"""Score detokenised hypotheses with sacreBLEU (BLEU and chrF, with their signatures).

    python -m sigma_plugin.recipe.score_mt --hyp exp/run/test.hyp --ref data/clean/test.de \\
        --output exp/run/test.results.json [--tokenize 13a] [--name run]

Prints one line per metric and writes the JSON atomically.
"""
import argparse
import json
from pathlib import Path

from sacrebleu.metrics import BLEU, CHRF

from .io import atomic_open, count_lines, fail, run_cli


def read_lines(path: Path):
    if not path.is_file():
        fail(f"{path}: file not found")
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def score(hyps, refs, tokenize: str = "13a") -> dict:
    bleu, chrf = BLEU(tokenize=tokenize), CHRF()
    b, c = bleu.corpus_score(hyps, [refs]), chrf.corpus_score(hyps, [refs])
    return {"bleu": round(b.score, 2), "bleu_signature": str(bleu.get_signature()),
            "bleu_detail": str(b), "chrf": round(c.score, 2), "chrf_signature": str(chrf.get_signature()),
            "sentences": len(hyps)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hyp", required=True, type=Path)
    ap.add_argument("--ref", required=True, type=Path)
    ap.add_argument("--output", required=True, type=Path)
    ap.add_argument("--tokenize", default="13a", help="sacreBLEU tokenizer (13a, intl, zh, ...)")
    ap.add_argument("--name", default="", help="label stored in the results (e.g. the run tag)")
    args = ap.parse_args()
    hyps, refs = read_lines(args.hyp), read_lines(args.ref)
    if len(hyps) != len(refs):
        fail(f"{args.hyp} has {len(hyps)} lines but {args.ref} has {len(refs)}: decoding lost sentences")
    if not refs:
        fail(f"{args.ref}: no reference lines")
    result = {"name": args.name, "hyp": str(args.hyp), "ref": str(args.ref), **score(hyps, refs, args.tokenize)}
    with atomic_open(args.output) as f:
        json.dump(result, f, indent=1, ensure_ascii=False)
    print(f"{args.name or args.hyp}: BLEU {result['bleu']:.2f}  ({result['bleu_signature']})")
    print(f"{args.name or args.hyp}: chrF {result['chrf']:.2f}  ({result['chrf_signature']})")


if __name__ == "__main__":
    run_cli(main)
