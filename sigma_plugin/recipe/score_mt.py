"""Score detokenised hypotheses with sacreBLEU (BLEU and chrF, with their signatures).

    python -m sigma_plugin.recipe.score_mt --hyp exp/run/test.hyp --ref data/raw/test.de \\
        [--ref-lines data/clean/test.ids] --output exp/run/test.results.json [--tokenize 13a] [--name run]

The references are meant to be the raw test set (as published scores use it), not a cleaned copy;
--ref-lines (1-based line numbers, one per hypothesis) selects the raw lines the hypotheses
belong to when the cleaning step dropped some. Prints one line per metric and writes the JSON
atomically.
"""
import argparse
import json
import sys
from pathlib import Path

from sacrebleu.metrics import BLEU, CHRF

from sigma_plugin.util import atomic_open, fail, run_cli

from .io import decode_line


def read_lines(path: Path):
    if not path.is_file():
        fail(f"{path}: file not found")
    with open(path, "rb") as f:
        return [decode_line(line, path, i).rstrip("\r\n") for i, line in enumerate(f, 1)]


def select_lines(refs, ids_path: Path, ref_path: Path):
    """The reference lines named (1-based) in ids_path, in that order."""
    out = []
    for i, text in enumerate(read_lines(ids_path), 1):
        if not text.strip().isdigit() or not 1 <= int(text) <= len(refs):
            fail(f"{ids_path}:{i}: {text!r} is not a line number of {ref_path} (1..{len(refs)})")
        out.append(refs[int(text) - 1])
    return out


def score(hyps, refs, tokenize: str = "13a") -> dict:
    bleu, chrf = BLEU(tokenize=tokenize), CHRF()
    b, c = bleu.corpus_score(hyps, [refs]), chrf.corpus_score(hyps, [refs])
    return {"bleu": round(b.score, 2), "bleu_signature": str(bleu.get_signature()),
            "bleu_detail": str(b), "chrf": round(c.score, 2), "chrf_signature": str(chrf.get_signature()),
            "sentences": len(hyps)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hyp", required=True, type=Path)
    ap.add_argument("--ref", required=True, type=Path, help="the raw references")
    ap.add_argument("--ref-lines", type=Path, help="1-based line numbers of --ref, one per hypothesis")
    ap.add_argument("--output", required=True, type=Path)
    ap.add_argument("--tokenize", default="13a", help="sacreBLEU tokenizer (13a, intl, zh, ...)")
    ap.add_argument("--name", default="", help="label stored in the results (e.g. the run tag)")
    args = ap.parse_args(argv)
    hyps, refs = read_lines(args.hyp), read_lines(args.ref)
    n_raw = len(refs)
    if args.ref_lines:
        refs = select_lines(refs, args.ref_lines, args.ref)
    if len(hyps) != len(refs):
        fail(f"{args.hyp} has {len(hyps)} lines but {args.ref} has {len(refs)}: decoding lost sentences")
    if not refs:
        fail(f"{args.ref}: no reference lines")
    result = {"name": args.name, "hyp": str(args.hyp), "ref": str(args.ref), "ref_lines_total": n_raw,
              **score(hyps, refs, args.tokenize)}
    with atomic_open(args.output) as f:
        json.dump(result, f, indent=1, ensure_ascii=False)
    if len(refs) < n_raw:
        print(f"{args.name or args.hyp}: scored {len(refs)} of the {n_raw} lines of {args.ref} (the others were "
              f"filtered out by the cleaning step)")
    print(f"{args.name or args.hyp}: BLEU {result['bleu']:.2f}  ({result['bleu_signature']})")
    print(f"{args.name or args.hyp}: chrF {result['chrf']:.2f}  ({result['chrf_signature']})")


if __name__ == "__main__":
    sys.exit(run_cli(None, main))
