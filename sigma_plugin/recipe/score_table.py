"""Markdown table of MT results (results.json files written by sigma_plugin.recipe.score_mt).

    python -m sigma_plugin.recipe.score_table exp/*/decode_*/results.json [--output scores.md]
"""
import argparse
import json
import sys
from pathlib import Path

from sigma_plugin.util import fail, run_cli

from .io import emit


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="+", type=Path)
    ap.add_argument("--output", type=Path)
    args = ap.parse_args(argv)
    rows = ["| run/split | BLEU | chrF | sentences | BLEU signature | chrF signature |", "|---|---|---|---|---|---|"]
    for path in args.results:
        if not path.is_file():
            fail(f"{path}: file not found")
        r = json.loads(path.read_text(encoding="utf-8"))
        rows.append(f"| {r['name'] or path.parent} | {r['bleu']:.2f} | {r['chrf']:.2f} | {r['sentences']} | "
                    f"`{r['bleu_signature']}` | `{r['chrf_signature']}` |")
    text = "\n".join(rows) + "\n"
    emit(text, args.output)


if __name__ == "__main__":
    sys.exit(run_cli(None, main))
