"""The stability map's outputs from its cell results: a markdown table and PNG figures."""
from __future__ import annotations

import math
import os
import statistics
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _is_lm(args) -> bool:
    return getattr(args, "task", "translation") == "language_modeling"


def depth_label(depth: int, args) -> str:
    """'18L-18L' for an encoder-decoder, '24L' for a decoder-only LM."""
    return f"{depth}L" if _is_lm(args) else f"{depth}L-{depth}L"


def _ordered(values):
    seen = []
    for v in values:
        if v not in seen:
            seen.append(v)
    return seen


def _group(results: Sequence[dict], depth: int) -> Dict[Tuple[str, str], List[dict]]:
    groups: Dict[Tuple[str, str], List[dict]] = {}
    for r in results:
        c = r["cell"]
        if c["depth"] == depth:
            groups.setdefault((c["model"], c["optimizer"]), []).append(r)
    return groups


def summary_cell(runs: List[dict]) -> Tuple[float, str]:
    """(mean final loss of the runs that did not diverge, markdown text with marks)."""
    finals = [r["final_loss"] for r in runs if r["status"] == "ok" and r["final_loss"] is not None]
    diverged = sum(r["status"] == "diverged" for r in runs)
    failed = sum(r["status"] == "failed" for r in runs)
    left = sum(bool(r["left_plateau"]) for r in runs)
    mean = statistics.fmean(finals) if finals else math.nan
    text = "—" if not finals else f"{mean:.2f}" + (f" ±{(max(finals) - min(finals)) / 2:.2f}" if len(finals) > 1 else "")
    marks = ""
    if left:
        marks += f" ✓{left}/{len(runs)}" if left < len(runs) else " ✓"
    if diverged:
        marks += f" ✗{diverged}/{len(runs)}"
    if failed:
        marks += f" !{failed}"
    return mean, text + marks


def markdown(results: Sequence[dict], unigram: float, args) -> str:
    depths = sorted({r["cell"]["depth"] for r in results})
    models = _ordered(r["cell"]["model"] for r in results)
    optimizers = _ordered(r["cell"]["optimizer"] for r in results)
    seeds = sorted({r["cell"]["seed"] for r in results})
    what = (f"language model, {args.tokens_per_sample}-token blocks; cross-entropy" if _is_lm(args)
            else "label-smoothed")
    lines = [f"Final training loss (bits, {what}) after {args.updates} updates, d={args.dim}, "
             f"{args.max_tokens} tokens per update, no warmup, mean ± half-range over seeds {seeds}. "
             f"✓ = left the unigram plateau (final NLL ≤ {unigram:.2f} − {args.plateau_margin} bits; "
             f"a fraction when only some seeds did), ✗ = diverged (non-finite, final loss above the first, "
             f"or above log2 V, a uniform guess's loss), "
             f"! = crashed.", ""]
    for depth in depths:
        groups = _group(results, depth)
        lines += [f"### {depth_label(depth, args)}", "", "| model | " + " | ".join(optimizers) + " |",
                  "|---|" + "---|" * len(optimizers)]
        for m in models:
            cells = [summary_cell(groups[(m, o)])[1] if (m, o) in groups else "" for o in optimizers]
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["### Every cell", "",
              "| depth | model | optimizer | seed | status | first | final | best | final NLL | plateau left | "
              "largest spike | min entropy (nats) | where @ update | min normalised entropy | seconds |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        c = r["cell"]

        def f(x):
            return "—" if x is None else f"{x:.3f}"
        where = "—" if r["min_entropy_at"] is None else f"{r['min_entropy_where']} @{r['min_entropy_at']}"
        lines.append(f"| {c['depth']}L | {c['model']} | {c['optimizer']} | {c['seed']} | {r['status']} | "
                     f"{f(r['first_loss'])} | {f(r['final_loss'])} | {f(r['best_loss'])} | {f(r['final_nll'])} | "
                     f"{'yes' if r['left_plateau'] else 'no'} | {r['max_spike']:.3f} | {f(r['min_entropy'])} | "
                     f"{where} | {f(r.get('min_norm_entropy'))} {r.get('min_norm_entropy_where') or ''} | "
                     f"{r['seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def heatmap(results: Sequence[dict], depth: int, path: Path, unigram: float, args) -> None:
    groups = _group(results, depth)
    models = _ordered(r["cell"]["model"] for r in results)
    optimizers = _ordered(r["cell"]["optimizer"] for r in results)
    grid = np.full((len(models), len(optimizers)), np.nan)
    fig, ax = plt.subplots(figsize=(1.3 * len(optimizers) + 3, 0.55 * len(models) + 1.8))
    for i, m in enumerate(models):
        for j, o in enumerate(optimizers):
            runs = groups.get((m, o), [])
            if not runs:
                continue
            mean, _ = summary_cell(runs)
            grid[i, j] = mean
    im = ax.imshow(grid, cmap="viridis_r", aspect="auto")
    for i, m in enumerate(models):
        for j, o in enumerate(optimizers):
            runs = groups.get((m, o), [])
            if not runs:
                continue
            if any(r["status"] == "diverged" for r in runs) and math.isnan(grid[i, j]):
                ax.text(j, i, "×", ha="center", va="center", color="red", fontsize=16, fontweight="bold")
            else:
                mark = "×" if any(r["status"] == "diverged" for r in runs) else ""
                ax.text(j, i, f"{grid[i, j]:.2f}{mark}", ha="center", va="center", fontsize=8,
                        color="white" if grid[i, j] > np.nanmean(grid) else "black")
    ax.set_xticks(range(len(optimizers)), optimizers, rotation=30, ha="right")
    ax.set_yticks(range(len(models)), models)
    kind = "LM" if _is_lm(args) else "MT"
    ax.set_title(f"{depth_label(depth, args)} {kind}, no warmup: final loss (× diverged; unigram NLL {unigram:.2f})")
    fig.colorbar(im, ax=ax, label="final training loss (bits)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def telling_optimizer(results: Sequence[dict], depth: int) -> str:
    """The optimizer column where stock post-LN and the best σReparam model differ most."""
    groups = _group(results, depth)
    optimizers = _ordered(r["cell"]["optimizer"] for r in results)
    best, best_gap = optimizers[0], -math.inf
    for o in optimizers:
        stock = [summary_cell(groups[(m, o)])[0] for m in ("postln",) if (m, o) in groups]
        sigma = [summary_cell(runs)[0] for (m, oo), runs in groups.items() if oo == o and m.startswith("sigma")]
        stock_v = stock[0] if stock and not math.isnan(stock[0]) else 20.0
        sigma_v = min([v for v in sigma if not math.isnan(v)], default=20.0)
        if stock_v - sigma_v > best_gap:
            best, best_gap = o, stock_v - sigma_v
    return best


def curves(results: Sequence[dict], depth: int, optimizer: str, path: Path, args) -> None:
    runs = [r for r in results if r["cell"]["depth"] == depth and r["cell"]["optimizer"] == optimizer]
    seed = min((r["cell"]["seed"] for r in runs), default=None)
    runs = [r for r in runs if r["cell"]["seed"] == seed]
    keys = ("loss", "entn_enc_self_min", "entn_dec_self_min", "entn_dec_cross_min")
    titles = ("training loss (bits)", "encoder self-attention", "decoder self-attention",
              "decoder cross-attention")
    if _is_lm(args):  # decoder-only: no encoder, no cross-attention
        keys, titles = (keys[0], keys[2]), (titles[0], titles[2])
    fig, axes = plt.subplots(1, len(keys), figsize=(4.8 * len(keys), 4))
    for r in runs:
        label = r["cell"]["model"]
        for ax, key in zip(axes, keys):
            pts = r["curve"].get(key, [])
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], label=label, marker=".")
    for ax in axes[1:]:
        ax.set_ylabel("lowest head entropy / log(keys)")
    for ax, title in zip(axes, titles):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("update")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{depth_label(depth, args)}, {optimizer}, seed {seed}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(out: Path, results: Sequence[dict], unigram: float, args) -> List[Path]:
    table = out / "table.md"
    tmp = out / ".table.md.tmp"
    tmp.write_text(markdown(results, unigram, args), encoding="utf-8")
    os.replace(tmp, table)
    paths = [table]
    for depth in sorted({r["cell"]["depth"] for r in results}):
        hm = out / f"heatmap_{depth}L.png"
        heatmap(results, depth, hm, unigram, args)
        cv = out / f"curves_{depth}L.png"
        curves(results, depth, telling_optimizer(results, depth), cv, args)
        paths += [hm, cv]
    return paths
