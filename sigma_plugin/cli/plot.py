"""sigma-plot: training curves of one or more runs (fairseq JSON logs or TensorBoard
directories) as PNGs in the manner of Zhai et al. 2023, Figure 1 -- loss, attention
entropy, σ/γ per layer, and layer × update entropy heatmaps. See docs/tools.md."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import List, Optional

# fairseq's import leaves the root logger at DEBUG: keep matplotlib's font search quiet.
logging.getLogger("matplotlib").setLevel(logging.WARNING)
import matplotlib  # noqa: E402

matplotlib.use("Agg")  # files only, never a window

from . import figures  # noqa: E402
from sigma_plugin.util import StepError, atomic_path, run_cli  # noqa: E402
from sigma_plugin.util.run_logs import ENTROPY_HINT, RunLog, read_run  # noqa: E402

FIGURES = ("loss", "entropy", "sigma", "heatmap")
FILENAMES = {"loss": "loss.png", "entropy": "entropy.png", "sigma": "sigma_gamma.png",
             "heatmap": "entropy_heatmap.png"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sigma-plot", description=__doc__.split("See")[0].strip(),
        epilog="Runs must be trained with --criterion label_smoothed_cross_entropy_with_sigma "
               "--sigma-log-interval N for the entropy and σ/γ figures.")
    p.add_argument("runs", nargs="+", metavar="RUN",
                   help="a fairseq log file written with --log-format json, or a --tensorboard-logdir directory")
    p.add_argument("--out", required=True, metavar="DIR", help="directory for the PNG files (created if missing)")
    p.add_argument("--labels", metavar="A,B,...",
                   help="comma-separated legend labels, one per RUN (default: derived from the paths)")
    p.add_argument("--metrics", metavar="NAMES",
                   help=f"comma-separated figures to draw out of {','.join(FIGURES)}; each one named must "
                        "have data in every run. Default: loss and entropy (required), plus sigma and "
                        "heatmap when logged")
    p.add_argument("--dpi", type=int, default=120, help="resolution of the PNGs (default 120)")
    return p


def parse_labels(value: Optional[str], runs: List[str]) -> List[Optional[str]]:
    if value is None:
        return [None] * len(runs)
    labels = [s.strip() for s in value.split(",")]
    if len(labels) != len(runs) or not all(labels):
        raise StepError(f"--labels: got {len(labels)} label(s) {labels} for {len(runs)} run(s); "
                       "give one non-empty label per RUN")
    return labels


def parse_metrics(value: Optional[str]) -> Optional[List[str]]:
    if value is None:
        return None
    names = [s.strip() for s in value.split(",") if s.strip()]
    bad = [n for n in names if n not in FIGURES]
    if bad or not names:
        raise StepError(f"--metrics: unknown figure(s) {bad or value!r}; choose from {','.join(FIGURES)}")
    return list(dict.fromkeys(names))


def unique_labels(runs: List[RunLog]) -> None:
    seen = {}
    for run in runs:
        n = seen[run.label] = seen.get(run.label, 0) + 1
        if n > 1:
            run.label = f"{run.label} ({n})"


def choose_figures(runs: List[RunLog], requested: Optional[List[str]]) -> List[str]:
    """The figures to draw; StepError naming the run and the missing metrics otherwise."""
    strict = requested is not None
    wanted = requested or list(FIGURES)
    chosen = []
    for name in wanted:
        missing = [r for r in runs if not has_data(r, name)]
        if not missing:
            chosen.append(name)
        elif strict or name == "loss":
            raise StepError(f"run {missing[0].source!r}: {MISSING[name]}")
        else:
            print(f"sigma-plot: note: {FILENAMES[name]} skipped: {len(missing)} run(s) lack it "
                  f"({MISSING[name]})", file=sys.stderr)
    return chosen


MISSING = {
    "loss": "no 'loss' values in its train_inner records",
    "entropy": f"no attention-entropy metrics (ent_*_mean) in its train_inner records; {ENTROPY_HINT}",
    "sigma": f"no σ/γ metrics (gamma_*_L*, sigma_*_L*, sigmaqk_*_max); {ENTROPY_HINT}",
    "heatmap": f"no per-layer entropy (ent_*_L*); {ENTROPY_HINT} and without --no-sigma-log-per-layer",
}


def has_data(run: RunLog, name: str) -> bool:
    if name == "loss":
        return run.has("loss")
    if name == "entropy":
        return bool(figures.kinds_logged([run]))
    if name == "sigma":
        return figures.has_spectral(run)
    return any(run.keys_matching(rf"ent_{k}_L\d+") for k in figures.KINDS)


def make_figure(name: str, runs: List[RunLog]):
    kinds = figures.kinds_logged(runs)
    if name == "loss":
        return figures.loss_figure(runs)
    if name == "entropy":
        return figures.entropy_figure(runs, kinds)
    if name == "sigma":
        return figures.spectral_figure(runs)
    return figures.heatmap_figure(runs, [k for k in kinds if any(r.keys_matching(rf"ent_{k}_L\d+") for r in runs)])


def save_figure(fig, path: str, dpi: int) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)


def plot(argv: Optional[List[str]] = None) -> int:
    """sigma-plot without the error handling: raises StepError."""
    args = build_parser().parse_args(argv)
    labels = parse_labels(args.labels, args.runs)
    requested = parse_metrics(args.metrics)
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise StepError(f"--out {args.out!r}: exists and is not a directory")
    runs = [read_run(path, label) for path, label in zip(args.runs, labels)]
    unique_labels(runs)
    for name in choose_figures(runs, requested):
        path = os.path.join(args.out, FILENAMES[name])
        save_figure(make_figure(name, runs), path, args.dpi)
        print(path)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """The sigma-plot console script: exit status 0, or 2 with a message on stderr."""
    return run_cli("sigma-plot", plot, argv)


if __name__ == "__main__":
    sys.exit(main())
