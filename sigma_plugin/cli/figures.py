"""The figures of sigma-plot, in the manner of Zhai et al. 2023, Figure 1. Each function
returns a matplotlib Figure (Agg canvas, nothing shown or saved) so callers and tests can
look at its axes and lines."""
from __future__ import annotations

import re
from typing import List, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from sigma_plugin.util.run_logs import RunLog

KINDS = ("enc_self", "dec_self", "dec_cross")
KIND_TITLES = {"enc_self": "encoder self-attention", "dec_self": "decoder self-attention",
               "dec_cross": "decoder cross-attention"}
_LAYER_KEY = re.compile(r"(gamma|sigma)_(enc|dec)_L(\d+)")


def run_colors(n: int):
    cmap = colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def kinds_logged(runs: Sequence[RunLog]) -> List[str]:
    return [k for k in KINDS if any(r.has(f"ent_{k}_mean") for r in runs)]


def loss_figure(runs: Sequence[RunLog]) -> Figure:
    """(a) training loss (solid) and validation loss (dashed, dots) against updates."""
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    for run, color in zip(runs, run_colors(len(runs))):
        x, y = run.series("loss")
        ax.plot(x, y, color=color, label=f"{run.label} train")
        if run.has("loss", "valid"):
            x, y = run.series("loss", "valid")
            ax.plot(x, y, color=color, linestyle="--", marker="o", markersize=3, label=f"{run.label} valid")
    ax.set(title="(a) loss", xlabel="updates", ylabel="loss (base 2)")
    ax.legend(fontsize="small")
    return fig


def entropy_figure(runs: Sequence[RunLog], kinds: Sequence[str]) -> Figure:
    """(b) attention entropy per attention type: mean over layers/heads (solid) and the
    minimum over layers/heads (dashed) against updates; a second row with the
    length-normalised entropy (entropy / log T) when the runs logged it."""
    rows = [("ent", "attention entropy (nats)")]
    if any(r.has(f"entn_{k}_mean") for r in runs for k in kinds):
        rows.append(("entn", "entropy / log(keys)"))
    fig = Figure(figsize=(5 * len(kinds), 4 * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), len(kinds), squeeze=False)
    for (prefix, ylabel), row in zip(rows, axes):
        for ax, kind in zip(row, kinds):
            for run, color in zip(runs, run_colors(len(runs))):
                for stat, style in (("mean", "-"), ("min", "--")):
                    if run.has(f"{prefix}_{kind}_{stat}"):
                        x, y = run.series(f"{prefix}_{kind}_{stat}")
                        ax.plot(x, y, color=color, linestyle=style, label=f"{run.label} {stat}")
            ax.set(title=f"(b) {KIND_TITLES[kind]}", xlabel="updates", ylabel=ylabel)
            ax.legend(fontsize="small")
    return fig


def spectral_keys(run: RunLog, quantity: str) -> List[str]:
    return run.keys_matching(rf"{quantity}_(enc|dec)_L\d+")


def has_spectral(run: RunLog) -> bool:
    return bool(spectral_keys(run, "gamma") or spectral_keys(run, "sigma")
                or any(run.has(f"sigmaqk_{k}_max") for k in KINDS))


def spectral_figure(runs: Sequence[RunLog]) -> Figure:
    """(c) per layer against updates: γ (the spectral norm of W_hat), σ(W) of the raw weights
    (encoder solid, decoder dashed, deeper layers darker), and ‖W_Q W_Kᵀ‖₂/√d per attention
    type. Panels without data in any run are left out."""
    panels = []
    if any(spectral_keys(r, "gamma") for r in runs):
        panels.append(("gamma", "(c) γ per layer (‖W_hat‖₂)", "γ"))
    if any(spectral_keys(r, "sigma") for r in runs):
        panels.append(("sigma", "(c) σ(W) per layer (raw weight)", "σ"))
    if any(r.has(f"sigmaqk_{k}_max") for r in runs for k in KINDS):
        panels.append(("sigmaqk", "(c) max ‖W_Q,h W_K,hᵀ‖₂/√d", "σ of Theorem 3.1"))
    fig = Figure(figsize=(5 * max(len(panels), 1), 4), layout="constrained")
    axes = fig.subplots(1, max(len(panels), 1), squeeze=False)[0]
    colors = run_colors(len(runs))
    for ax, (quantity, title, ylabel) in zip(axes, panels):
        for run, color in zip(runs, colors):
            if quantity == "sigmaqk":
                for kind, style in zip(KINDS, ("-", "--", ":")):
                    if run.has(f"sigmaqk_{kind}_max"):
                        ax.plot(*run.series(f"sigmaqk_{kind}_max"), color=color, linestyle=style)
                continue
            keys = spectral_keys(run, quantity)
            depth = max((int(_LAYER_KEY.fullmatch(k).group(3)) for k in keys), default=0) + 1
            for key in keys:
                _, side, layer = _LAYER_KEY.fullmatch(key).groups()
                shade = 0.35 + 0.65 * (int(layer) + 1) / depth
                ax.plot(*run.series(key), color=color, alpha=shade, linewidth=1,
                        linestyle="-" if side == "enc" else "--")
        ax.set(title=title, xlabel="updates", ylabel=ylabel)
        handles = [Line2D([], [], color=c, label=r.label) for r, c in zip(runs, colors)]
        if quantity == "sigmaqk":
            handles += [Line2D([], [], color="gray", linestyle=s, label=k) for k, s in zip(KINDS, ("-", "--", ":"))]
        else:
            handles += [Line2D([], [], color="gray", linestyle="-", label="encoder"),
                        Line2D([], [], color="gray", linestyle="--", label="decoder")]
        ax.legend(handles=handles, fontsize="small")
    return fig


def layer_matrix(run: RunLog, kind: str):
    """(layers, updates, matrix[layer, update]) of ent_KIND_L{n}; nan where not logged."""
    keys = run.keys_matching(rf"ent_{kind}_L\d+")
    layers = [int(k.rsplit("L", 1)[1]) for k in keys]
    updates = sorted({u for k in keys for u in run.train[k]})
    matrix = np.full((len(keys), len(updates)), np.nan)
    col = {u: j for j, u in enumerate(updates)}
    for i, key in enumerate(keys):
        for u, v in run.train[key].items():
            matrix[i, col[u]] = v
    return layers, updates, matrix


def _edges(centres: Sequence[float]) -> np.ndarray:
    c = np.asarray(centres, dtype=float)
    if len(c) == 1:
        return np.array([c[0] - 0.5, c[0] + 0.5])
    mid = (c[1:] + c[:-1]) / 2
    return np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])


def heatmap_figure(runs: Sequence[RunLog], kinds: Sequence[str]) -> Figure:
    """(d) layer × update heatmaps of per-layer entropy: one row per run, one column per
    attention type, one colour scale for all."""
    data = {(r.label, k): layer_matrix(r, k) for r in runs for k in kinds}
    finite = [m[np.isfinite(m)] for _, _, m in data.values() if np.isfinite(m).any()]
    vmax = max(float(f.max()) for f in finite) if finite else 1.0
    fig = Figure(figsize=(4.5 * len(kinds) + 1, 3 * len(runs) + 0.5), layout="constrained")
    axes = fig.subplots(len(runs), len(kinds), squeeze=False)
    mesh = None
    for row, run in zip(axes, runs):
        for ax, kind in zip(row, kinds):
            layers, updates, matrix = data[(run.label, kind)]
            ax.set(title=f"(d) {run.label}: {kind}", xlabel="updates", ylabel="layer")
            if not layers:
                ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes)
                continue
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            mesh = ax.pcolormesh(_edges(updates), _edges(layers), np.ma.masked_invalid(matrix),
                                 vmin=0.0, vmax=vmax, cmap="viridis")
    if mesh is not None:
        fig.colorbar(mesh, ax=axes, label="attention entropy (nats)")
    return fig
