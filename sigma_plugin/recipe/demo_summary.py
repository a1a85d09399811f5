"""Final table of the demo (recipes/demo.sh): scores and where the outputs are.

    python -m sigma_plugin.recipe.demo_summary --workdir demo
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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", type=Path, default=Path("demo"))
    args = ap.parse_args()
    rows = list(mt_rows(args.workdir)) + list(asr_rows(args.workdir))
    if not rows:
        print(f"demo_summary: no results under {args.workdir} yet")
        return
    width = max(len(r[0]) for r in rows)
    print(f"{'run':<{width}}  {'score':<24}  outputs / plots")
    for name, score, out, plots in rows:
        print(f"{name:<{width}}  {score:<24}  {out}  |  {plots}")


if __name__ == "__main__":
    run_cli(main)
