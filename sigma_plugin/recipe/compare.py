"""Side-by-side table of several training runs at chosen updates (markdown), from fairseq
JSON logs or TensorBoard folders -- e.g. stock post-LN vs σReparam at the same depth.

    python -m sigma_plugin.recipe.compare exp/a/train.log exp/b/train.log --labels a,b \\
        --at 100,300,600 --keys loss,ent_enc_self_min,ent_dec_cross_min --output cmp.md

A value is the last one logged at or before the requested update; — if none, or if the run's
log ends before that update (a run that stopped early is not carried forward). A key
``valid:NAME`` reads the validation metric NAME (e.g. ``valid:loss``, ``valid:ppl``) instead of
the training one.
"""
import argparse
import sys
from pathlib import Path
from typing import List

from sigma_plugin.util import fail, run_cli
from sigma_plugin.util.run_logs import read_run

from .io import emit


def last_update(run) -> int:
    """The last update any training metric of the run was logged at (0 if none)."""
    return max((u for series in run.train.values() for u in series), default=0)


def series_of(run, key: str):
    """{update: value} of a training key, or of a validation one written ``valid:NAME``."""
    if key.startswith("valid:"):
        return run.valid.get(key[len("valid:"):], {})
    return run.train.get(key, {})


def value_at(run, key: str, update: int):
    if update > last_update(run):
        return None
    points = [(u, v) for u, v in sorted(series_of(run, key).items()) if u <= update]
    return points[-1][1] if points else None


def first_last(run, key: str):
    points = sorted(series_of(run, key).items())
    return (points[0], points[-1]) if points else (None, None)


def table(runs, labels: List[str], keys: List[str], updates: List[int]) -> str:
    lines = ["| run | key | " + " | ".join(f"@{u}" for u in updates) + " | first → last |",
             "|---|---|" + "---|" * len(updates) + "---|"]
    for run, label in zip(runs, labels):
        for key in keys:
            cells = [value_at(run, key, u) for u in updates]
            first, last = first_last(run, key)
            fl = f"{first[1]:.3f} (u{first[0]}) → {last[1]:.3f} (u{last[0]})" if first else "—"
            lines.append(f"| {label} | {key} | " + " | ".join("—" if c is None else f"{c:.3f}" for c in cells)
                         + f" | {fl} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="fairseq JSON logs or TensorBoard folders")
    ap.add_argument("--labels", help="comma-separated, one per run")
    ap.add_argument("--at", default="100,200,300,400,500,600", help="updates to report")
    ap.add_argument("--keys", default="loss,ent_enc_self_min,ent_dec_self_min,ent_dec_cross_min,gamma_mean",
                    help="training metrics, or valid:NAME for a validation one")
    ap.add_argument("--output", type=Path, help="also write the table here (markdown)")
    args = ap.parse_args(argv)
    labels = args.labels.split(",") if args.labels else [None] * len(args.runs)
    if len(labels) != len(args.runs):
        fail(f"--labels has {len(labels)} names for {len(args.runs)} runs")
    runs = [read_run(path, label) for path, label in zip(args.runs, labels)]  # StepError: one line
    updates = [int(u) for u in args.at.split(",")]
    text = table(runs, [r.label for r in runs], args.keys.split(","), updates)
    emit(text, args.output)


if __name__ == "__main__":
    sys.exit(run_cli(None, main))
