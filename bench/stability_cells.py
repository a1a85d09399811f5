"""The stability map's cells: what each model and optimizer means as fairseq flags, and what a
finished run's JSON log says about it (final/best loss, plateau, divergence, spikes, entropy).

Used by bench/stability_map.py; no fairseq import, so the analysis is unit-testable on its own.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence

# Models: every one is fairseq's post-LN Transformer built by `sigma_transformer` (MT) or
# `sigma_transformer_lm --sigma-layernorm post` (LM); with --sigma-reparam none it is exactly the
# stock model, so only the named flags differ.
MODELS: Dict[str, List[str]] = {
    "postln": ["--sigma-reparam", "none"],
    "postln_x0.35": ["--sigma-reparam", "none", "--sigma-init-scale", "0.35"],
    "preln": ["--sigma-reparam", "none", "--sigma-layernorm", "pre"],
    "deepnorm": ["--sigma-reparam", "none", "--sigma-deepnorm"],
    "sigma_g=sigma0": ["--sigma-reparam", "all", "--sigma-gamma-init", "sigma0"],
    "sigma_g=1": ["--sigma-reparam", "all", "--sigma-gamma-init", "one"],
    "sigma_g=0.35sigma0": ["--sigma-reparam", "all", "--sigma-gamma-init", "0.35*sigma0"],
    "sigma_noln": ["--sigma-reparam", "all", "--sigma-layernorm", "none"],
}

_ADAM = ["--optimizer", "adam", "--adam-betas", "(0.9, 0.98)", "--lr-scheduler", "fixed"]
# LARS: SGD with momentum 0.9 and a per-tensor trust ratio η·‖w‖/‖g‖ (γ and biases included).
_LARS = ["--optimizer", "lars", "--momentum", "0.9", "--lars-trust-coefficient", "0.001",
         "--lars-adapt-1d", "--lr-scheduler", "fixed"]


def optimizer_flags(name: str) -> List[str]:
    """'adam1e-3' → Adam at lr 1e-3, no warmup; 'lars1' → LARS at lr 1 (constant LR)."""
    m = re.fullmatch(r"(adam|lars|sgd)([0-9.e+-]+)", name)
    if not m:
        raise ValueError(f"optimizer {name!r}: expected adam<LR>, lars<LR> or sgd<LR>, e.g. adam1e-3")
    kind, lr = m.group(1), m.group(2)
    try:
        if float(lr) <= 0:
            raise ValueError
    except ValueError:
        raise ValueError(f"optimizer {name!r}: the learning rate {lr!r} is not a positive number") from None
    if kind == "adam":
        return _ADAM + ["--lr", lr]
    if kind == "lars":
        return _LARS + ["--lr", lr]
    return ["--optimizer", "sgd", "--momentum", "0.9", "--clip-norm", "1", "--lr-scheduler", "fixed", "--lr", lr]


@dataclass(frozen=True)
class Cell:
    depth: int
    model: str
    optimizer: str
    seed: int

    @property
    def key(self) -> str:
        return f"{self.depth}L__{self.model}__{self.optimizer}__s{self.seed}"


@dataclass
class CellResult:
    cell: Dict[str, object]
    status: str                      # "ok", "diverged" or "failed" (crashed for another reason)
    updates: int                     # last update logged
    first_loss: Optional[float]
    final_loss: Optional[float]
    best_loss: Optional[float]
    final_nll: Optional[float]
    left_plateau: bool
    max_spike: float                 # largest rise of the loss above its running minimum
    min_entropy: Optional[float]     # lowest per-layer minimum head entropy (nats) of any attention
    min_entropy_at: Optional[int]
    min_entropy_where: Optional[str]
    min_norm_entropy: Optional[float]  # the same for entropy / log(attendable keys)
    min_norm_entropy_where: Optional[str]
    seconds: float
    curve: Dict[str, List[List[float]]] = field(default_factory=dict)  # key → [[update, value], ...]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)


_LINE = re.compile(r"\|\s*train_inner\s*\|\s*(\{.*\})\s*$")
ENTROPY_KEYS = ("ent_enc_self_min", "ent_dec_self_min", "ent_dec_cross_min")
# entropy / log(attendable keys): comparable across batches of different lengths
NORMALISED_KEYS = ("entn_enc_self_min", "entn_dec_self_min", "entn_dec_cross_min")
CURVE_KEYS = ("loss", "nll_loss") + ENTROPY_KEYS + NORMALISED_KEYS
DIVERGED_MARKERS = ("gradients are Nan/Inf", "Minimum loss scale reached", "FloatingPointError",
                    "nan loss", "loss is NaN")


def read_train_inner(text: str) -> List[dict]:
    rows = []
    for line in text.splitlines():
        m = _LINE.search(line)
        if m:
            try:
                rows.append(json.loads(m.group(1)))
            except json.JSONDecodeError:
                pass  # a line cut short by a crash
    return rows


def _float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def largest_spike(losses: Sequence[float]) -> float:
    """max_t (loss_t − min_{s<t} loss_s), 0 when the loss never rises above an earlier value."""
    spike, low = 0.0, math.inf
    for x in losses:
        if math.isfinite(low) and math.isfinite(x):
            spike = max(spike, x - low)
        if math.isfinite(x):
            low = min(low, x)
    return spike


def analyse(cell: Cell, log_text: str, returncode: int, seconds: float, unigram_bits: float,
            plateau_margin: float = 0.5, uniform_bits: Optional[float] = None) -> CellResult:
    """Summarise one run. A run *left the unigram plateau* when its final training NLL (bits per
    target token) is at least ``plateau_margin`` bits below the unigram entropy of the training
    targets (the loss of a model that ignores its input); it *diverged* when a logged loss is
    non-finite, fairseq stopped on non-finite gradients, its final loss is above its first, or
    (given ``uniform_bits`` = log2 of the output vocabulary) above the loss of a uniform guess —
    a model that starts with exploded logits can fall from 17,000 bits to 12,000 and still be
    broken."""
    rows = read_train_inner(log_text)
    curve: Dict[str, List[List[float]]] = {k: [] for k in CURVE_KEYS}
    for row in rows:
        u = int(_float(row.get("num_updates")))
        for k in CURVE_KEYS:
            if k in row:
                curve[k].append([u, _float(row[k])])
    losses = [v for _, v in curve["loss"]]
    first = losses[0] if losses else None
    final = losses[-1] if losses else None
    finite = [x for x in losses if math.isfinite(x)]
    best = min(finite) if finite else None
    # label-smoothed criteria log the NLL beside the loss; plain cross-entropy (the LM) only the loss
    nll_key = "nll_loss" if curve["nll_loss"] else "loss"
    final_nll = curve[nll_key][-1][1] if curve[nll_key] else None
    nonfinite = any(not math.isfinite(x) for x in losses)
    crashed_nonfinite = returncode != 0 and any(m in log_text for m in DIVERGED_MARKERS)
    above_start = first is not None and final is not None and final > first
    above_uniform = uniform_bits is not None and final is not None and final > uniform_bits
    if nonfinite or crashed_nonfinite or above_start or above_uniform:
        status = "diverged"
    elif returncode != 0 or not losses:
        status = "failed"
    else:
        status = "ok"
    left = (status == "ok" and final_nll is not None and math.isfinite(final_nll)
            and final_nll <= unigram_bits - plateau_margin)
    low, low_at, low_where = _lowest(curve, ENTROPY_KEYS)
    low_n, _, low_n_where = _lowest(curve, NORMALISED_KEYS)
    return CellResult(cell=asdict(cell), status=status, updates=int(curve["loss"][-1][0]) if losses else 0,
                      first_loss=first, final_loss=final, best_loss=best, final_nll=final_nll,
                      left_plateau=left, max_spike=largest_spike(losses), min_entropy=low,
                      min_entropy_at=low_at, min_entropy_where=low_where, min_norm_entropy=low_n,
                      min_norm_entropy_where=low_n_where, seconds=seconds,
                      curve={k: v for k, v in curve.items() if v})


def _lowest(curve, keys):
    """(value, update, attention kind) of the lowest finite value over the given entropy keys."""
    low, low_at, low_where = None, None, None
    for k in keys:
        for u, v in curve.get(k, []):
            if math.isfinite(v) and (low is None or v < low):
                low, low_at, low_where = v, int(u), k.split("_", 1)[1][:-len("_min")]
    return low, low_at, low_where


def unigram_entropy_bits(token_counts: Dict[int, int]) -> float:
    total = sum(token_counts.values())
    return -sum(c / total * math.log2(c / total) for c in token_counts.values() if c > 0)
