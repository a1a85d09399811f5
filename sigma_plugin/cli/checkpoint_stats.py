"""Per-layer σ, γ and attention statistics of a checkpoint's state dict (sigma-inspect).

Everything is computed from the stored tensors with the library's own functions
(``sigma_plugin.nn.qk_spectral_norm``, ``entropy_lower_bound``) on the weights the model
uses at eval time (W_hat = γ/σ·W), so no dataset or model rebuild is needed.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from types import SimpleNamespace
from typing import Dict, List, Mapping, Optional

import torch
from torch import nn

from sigma_plugin.models.introspection import layer_prefix, side_of
from sigma_plugin.nn import entropy_lower_bound, qk_spectral_norm

from .sigma_state import ORIGINAL, eval_sigma, exact_sigma, effective_weight, reparam_weights

_ATTENTION_KIND = {("encoder", "self_attn"): "enc_self", ("decoder", "self_attn"): "dec_self",
                   ("decoder", "encoder_attn"): "dec_cross"}


def layer_of(module: str) -> str:
    """``encoder.layers.3.fc1`` -> ``encoder.layers.3`` (any layer list of any fairseq model, see
    models/introspection.py); modules outside layers -> ``other``."""
    return layer_prefix(module) or "other"


@dataclass
class WeightStats:
    module: str
    layer: str
    shape: List[int]
    sigma_exact: float              # ‖W‖₂ of the raw weight
    sigma_est: Optional[float]      # the power-iteration estimate the model divides by (σReparam only)
    gamma: Optional[float]
    effective_norm: float           # ‖W_hat‖₂ = γ·σ_exact/σ_est (the raw ‖W‖₂ for plain weights)


@dataclass
class AttentionStats:
    module: str
    layer: str
    kind: str                       # enc_self / dec_self / dec_cross
    heads: int
    sigma_qk: List[float]           # per head ‖scaling·W_Q,h W_K,hᵀ‖₂, biases folded in
    sigma_qk_max: float
    sigma_qk_mean: float
    s: float                        # the Theorem 3.1 logit-norm bound for the most peaked head
    entropy_lower_bound: float      # nats, for that s and T keys
    log_T: float                    # the maximum entropy, for scale


def weight_stats(state_dict: Mapping[str, torch.Tensor]) -> List[WeightStats]:
    """One row per σReparam'd weight and per plain ≥2-d weight inside a layer."""
    rows = []
    reparam = {w.module: w for w in reparam_weights(state_dict)}
    for key, value in state_dict.items():
        if key.endswith(ORIGINAL):
            w = reparam[key[: -len(ORIGINAL)]]
            exact, est = float(exact_sigma(w.weight)), float(eval_sigma(w.weight, w.u))
            gamma = float(w.gamma)
            rows.append(WeightStats(w.module, layer_of(w.module), list(w.weight.shape), exact, est,
                                    gamma, gamma * exact / est))
        elif key.endswith(".weight") and value.dim() >= 2 and ".parametrizations." not in key:
            module = key[: -len(".weight")]
            if layer_of(module) == "other":
                continue  # embeddings, output projection
            exact = float(exact_sigma(value))
            rows.append(WeightStats(module, layer_of(module), list(value.shape), exact, None, None, exact))
    return rows


def _linear(weight: torch.Tensor, bias: Optional[torch.Tensor]) -> nn.Linear:
    lin = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    with torch.no_grad():
        lin.weight.copy_(weight.float())
        if bias is not None:
            lin.bias.copy_(bias.float())
    return lin


def attention_stats(state_dict: Mapping[str, torch.Tensor], heads: Dict[str, int],
                    input_norms: Dict[str, float], keys: int) -> List[AttentionStats]:
    """Per attention module: ‖W_Q,h W_K,hᵀ‖₂/√d per head via qk_spectral_norm on the eval-time
    q/k projections, and the entropy bound for s = σ_max·‖[x_q,1]‖·√T·‖[x_k,1]‖: every query
    token x_q has norm ``input_norms[query side]``, every key token x_k ``input_norms[key side]``
    (sides: "encoder"/"decoder"), and the T keys are aligned -- the worst case of
    ‖[X,1]‖₂ ≤ √T·‖[x_k,1]‖. Biases are folded in as in the training-time probe."""
    rows = []
    modules = sorted({k.rsplit(".q_proj.", 1)[0] for k in state_dict if ".q_proj." in k})
    for module in modules:
        layer = layer_prefix(module)
        side = side_of(module)
        kind = _ATTENTION_KIND.get((side, module[len(layer) + 1:])) if layer else None
        if kind is None:
            continue
        wq, wk = effective_weight(state_dict, module + ".q_proj"), effective_weight(state_dict, module + ".k_proj")
        if wq is None or wk is None:
            continue
        h = heads[side]
        head_dim = wq.shape[0] // h
        attn = SimpleNamespace(q_proj=_linear(wq, state_dict.get(module + ".q_proj.bias")),
                               k_proj=_linear(wk, state_dict.get(module + ".k_proj.bias")),
                               num_heads=h, scaling=head_dim ** -0.5)
        per_head = qk_spectral_norm(attn)
        key_side = "encoder" if kind == "dec_cross" else side
        q_aug = math.sqrt(input_norms[side] ** 2 + 1.0)
        k_aug = math.sqrt(input_norms[key_side] ** 2 + 1.0)
        s = float(per_head.max()) * q_aug * math.sqrt(keys) * k_aug
        rows.append(AttentionStats(module, layer_of(module), kind, h, [float(v) for v in per_head],
                                   float(per_head.max()), float(per_head.mean()), s,
                                   float(entropy_lower_bound(s, keys)), math.log(keys)))
    return rows


def as_dicts(rows) -> List[dict]:
    return [asdict(r) for r in rows]
