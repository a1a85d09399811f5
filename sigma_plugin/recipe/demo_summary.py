"""Final table of the demo (recipes/demo.sh): scores and where the outputs are, then a few
example outputs of each model (source / reference / hypothesis).

    python -m sigma_plugin.recipe.demo_summary --workdir demo [--examples 3]
"""
import argparse
import csv
import json
from pathlib import Path

from .io import run_cli


def mt_rows(workdir: Path):
    for res in sorted(workdir.glob("mt/exp/*/decode_*/results.json")):
        r = json.loads(res.read_text(encoding="utf-8"))
        yield ("MT " + r["name"], f"BLEU {r['bleu']:.2f}  chrF {r['chrf']:.2f}", str(res.parent),
               str(res.parents[1] / "plots"))


def asr_rows(workdir: Path):
    for res in sorted(workdir.glob("asr/exp/*/decode_*/RESULTS.tsv")):
        with open(res, encoding="utf-8") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                yield (f"ASR {res.parents[1].name}/{row['subset']}",
                       f"WER {float(row['wer']):.2f}  CER {float(row['cer']):.2f}", str(res.parent),
                       str(res.parents[1] / "plots"))


def mt_examples(workdir: Path, n: int):
    """(name, [(source, reference, hypothesis)]) from fairseq-generate's S-/T-/D- lines, by sentence id."""
    for gen in sorted(workdir.glob("mt/exp/*/decode_*/generate.out")):
        by_id = {}
        for line in gen.read_text(encoding="utf-8").splitlines():
            kind, _, rest = line.partition("-")
            sid, _, fields = rest.partition("\t")
            if kind in ("S", "T", "D") and sid.isdigit():
                text = fields.split("\t")[-1] if kind == "D" else fields
                by_id.setdefault(int(sid), {})[kind] = text
        rows = [(v.get("S", ""), v.get("T", ""), v.get("D", "")) for _, v in sorted(by_id.items())[:n]]
        yield f"MT {gen.parents[1].name}/{gen.parent.name[len('decode_'):]}", rows


def asr_examples(workdir: Path, n: int):
    """(name, [(utterance id, reference, hypothesis)]) from the scorer's hyp_ref.tsv files."""
    for tsv in sorted(workdir.glob("asr/exp/*/decode_*/*/hyp_ref.tsv")):
        with open(tsv, encoding="utf-8") as f:
            rows = [(r["id"], r["ref"], r["hyp"]) for _, r in zip(range(n), csv.DictReader(f, delimiter="\t"))]
        yield f"ASR {tsv.parents[2].name}/{tsv.parent.name}", rows


def print_examples(workdir: Path, n: int):
    for name, rows in list(mt_examples(workdir, n)) + list(asr_examples(workdir, n)):
        print(f"\n{name}: first {len(rows)} example(s)")
        first = "src" if name.startswith("MT") else "utt"
        for a, ref, hyp in rows:
            print(f"  {first}: {a}\n  ref: {ref}\n  hyp: {hyp}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", type=Path, default=Path("demo"))
    ap.add_argument("--examples", type=int, default=3, help="example outputs per model and test set (0: none)")
    args = ap.parse_args()
    rows = list(mt_rows(args.workdir)) + list(asr_rows(args.workdir))
    if not rows:
        print(f"demo_summary: no results under {args.workdir} yet")
        return
    width = max(len(r[0]) for r in rows)
    print(f"{'run':<{width}}  {'score':<24}  outputs / plots")
    for name, score, out, plots in rows:
        print(f"{name:<{width}}  {score:<24}  {out}  |  {plots}")
    if args.examples > 0:
        print_examples(args.workdir, args.examples)


if __name__ == "__main__":
    run_cli(main)
