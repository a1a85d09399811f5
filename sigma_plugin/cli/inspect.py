"""sigma-inspect: per-layer σ, γ, effective spectral norms, ‖W_Q,h W_K,hᵀ‖₂/√d per head and the
implied attention-entropy lower bound (Theorem 3.1) of a checkpoint. See docs/tools.md."""
from __future__ import annotations

import argparse
import json
import math
import sys
from typing import List, Optional

from sigma_plugin.util import StepError, run_cli

from .common import arg, load_checkpoint, model_args


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sigma-inspect", description=__doc__.split("See")[0].strip())
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a fairseq checkpoint (.pt) trained with sigma_plugin")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument("--input-norm", type=float, metavar="N",
                   help="assumed ‖x‖ of every token entering attention, for the entropy bound "
                        "(default √d per side: what a LayerNorm with unit gain outputs)")
    p.add_argument("--keys", type=int, default=64, metavar="T",
                   help="number of keys T for the entropy bound (default 64)")
    return p


def inspect_checkpoint(path: str, input_norm: Optional[float] = None, keys: int = 64) -> dict:
    """Everything sigma-inspect reports, as plain data (the --json output)."""
    if keys < 2:
        raise StepError(f"--keys must be >= 2 (the bound needs at least two keys), got {keys}")
    if input_norm is not None and not (math.isfinite(input_norm) and input_norm >= 0):
        raise StepError(f"--input-norm must be a finite number >= 0, got {input_norm}")
    state = load_checkpoint(path)
    args = model_args(state, path)
    from .checkpoint_stats import as_dicts, attention_stats, weight_stats

    # a side the model lacks (a decoder-only LM, an encoder-only RoBERTa) takes the other's values
    dims = {"encoder": arg(args, "encoder_embed_dim"), "decoder": arg(args, "decoder_embed_dim")}
    dims = {side: d or dims["decoder"] or dims["encoder"] for side, d in dims.items()}
    heads = {"encoder": arg(args, "encoder_attention_heads"), "decoder": arg(args, "decoder_attention_heads")}
    heads = {side: h or heads["decoder"] or heads["encoder"] or 1 for side, h in heads.items()}
    if input_norm is None:
        if not dims["encoder"]:
            raise StepError(f"{path}: neither encoder_embed_dim nor decoder_embed_dim in the model config; "
                            f"give --input-norm")
        norms = {side: math.sqrt(d) for side, d in dims.items()}
        norm_note = "√d (LayerNorm output with unit gain)"
    else:
        norms = {"encoder": input_norm, "decoder": input_norm}
        norm_note = "--input-norm"
    model = state["model"]
    try:
        weights = weight_stats(model)
        attention = attention_stats(model, heads, norms, keys)
    except (ValueError, RuntimeError) as e:
        raise StepError(f"{path}: {e}") from None
    return {
        "checkpoint": path,
        "arch": arg(args, "arch") or arg(args, "_name"),
        "sigma_reparam": arg(args, "sigma_reparam"),
        "sigma_layernorm": arg(args, "sigma_layernorm"),
        "num_updates": (state.get("optimizer_history") or [{}])[-1].get("num_updates"),
        "bound_assumptions": {
            "input_norm": norms, "input_norm_source": norm_note, "keys": keys,
            "s": "σ_max·‖[x_q,1]‖·√T·‖[x_k,1]‖ (all T keys aligned: the worst case of ‖[X,1]‖₂)",
        },
        "weights": as_dicts(weights),
        "attention": as_dicts(attention),
    }


def _fmt(value, digits=4):
    return "-" if value is None else f"{value:.{digits}g}"


def render_tables(report: dict) -> str:
    from tabulate import tabulate

    a = report["bound_assumptions"]
    norms = ", ".join(f"{side} {v:.4g}" for side, v in a["input_norm"].items())
    lines = [
        f"checkpoint: {report['checkpoint']}  arch: {report['arch']}  updates: {report['num_updates']}  "
        f"sigma_reparam: {report['sigma_reparam']}  sigma_layernorm: {report['sigma_layernorm']}",
        "σ_exact = ‖W‖₂ of the raw weight; σ_est = the power-iteration estimate (from the stored u) that "
        "the model divides by; ‖W_hat‖₂ = γ·σ_exact/σ_est.",
        f"Entropy bound (Theorem 3.1) for the head with the largest σ_qk = ‖W_Q,h W_K,hᵀ‖₂/√d (biases "
        f"folded in), with s = {a['s']}, token norm ‖x‖ = {norms} ({a['input_norm_source']}), "
        f"T = {a['keys']} keys (--keys); log T = {math.log(a['keys']):.4g} is the maximum.",
    ]
    layers = list(dict.fromkeys([w["layer"] for w in report["weights"]] + [t["layer"] for t in report["attention"]]))
    for layer in layers:
        lines.append(f"\n== {layer} ==")
        rows = [[w["module"].removeprefix(layer + "."), "x".join(map(str, w["shape"])), _fmt(w["sigma_exact"]),
                 _fmt(w["sigma_est"]), _fmt(w["gamma"]), _fmt(w["effective_norm"])]
                for w in report["weights"] if w["layer"] == layer]
        if rows:
            lines.append(tabulate(rows, headers=["weight", "shape", "σ_exact", "σ_est", "γ", "‖W_hat‖₂"]))
        rows = [[t["module"].removeprefix(layer + "."), t["kind"], t["heads"], _fmt(t["sigma_qk_max"]),
                 _fmt(t["sigma_qk_mean"]), _fmt(t["s"]), _fmt(t["entropy_lower_bound"])]
                for t in report["attention"] if t["layer"] == layer]
        if rows:
            lines.append("")
            lines.append(tabulate(rows, headers=["attention", "kind", "heads", "σ_qk max", "σ_qk mean", "s",
                                                 "entropy ≥ (nats)"]))
    return "\n".join(lines)


def inspect_main(argv: Optional[List[str]] = None) -> int:
    """sigma-inspect without the error handling: raises StepError."""
    args = build_parser().parse_args(argv)
    report = inspect_checkpoint(args.checkpoint, args.input_norm, args.keys)
    print(json.dumps(report, indent=1) if args.json else render_tables(report))
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """The sigma-inspect console script: exit status 0, or 2 with a message on stderr."""
    return run_cli("sigma-inspect", inspect_main, argv)


if __name__ == "__main__":
    sys.exit(main())
