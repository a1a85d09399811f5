"""σReparam read straight from a state dict (no model rebuild, no dataset needed).

A σReparam'd weight ``<module>.weight`` is stored by torch.nn.utils.parametrize as
``<module>.parametrizations.weight.original`` (W), ``...weight.0.gamma`` (γ) and
``...weight.0.u`` (the power-iteration vector).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, Iterator, List, Mapping, Optional

import torch

from sigma_plugin.nn.power_iteration import EPS, power_iteration

PREFIX = ".parametrizations.weight."
ORIGINAL = PREFIX + "original"
GAMMA = PREFIX + "0.gamma"
U = PREFIX + "0.u"
_OTHER_PARAMETRIZATION = re.compile(r"\.parametrizations\.(\w+)\.(\d+)\.")


@dataclass
class ReparamWeight:
    module: str            # qualified module name, e.g. encoder.layers.0.fc1
    weight: torch.Tensor   # W (raw), any shape with >= 2 dims
    gamma: torch.Tensor    # γ, scalar
    u: torch.Tensor        # right singular vector estimate, fp32


def reparam_weights(state_dict: Mapping[str, torch.Tensor]) -> Iterator[ReparamWeight]:
    """Every σReparam'd weight of a state dict, in state-dict order."""
    for key, value in state_dict.items():
        if key.endswith(ORIGINAL):
            module = key[: -len(ORIGINAL)]
            try:
                gamma, u = state_dict[module + GAMMA], state_dict[module + U]
            except KeyError as e:
                raise ValueError(f"{module}: σReparam weight without its {e.args[0]!r} entry") from None
            yield ReparamWeight(module, value, gamma, u)


def unknown_parametrizations(state_dict: Mapping[str, torch.Tensor]) -> List[str]:
    """Keys of parametrizations that are not one σReparam on ``weight`` (e.g. weight_norm)."""
    bad = []
    for key in state_dict:
        m = _OTHER_PARAMETRIZATION.search(key)
        if m and (m.group(1) != "weight" or m.group(2) != "0"):
            bad.append(key)
        elif ".parametrizations." in key and not key.endswith((ORIGINAL, GAMMA, U)):
            bad.append(key)
    return bad


def eval_sigma(weight: torch.Tensor, u: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """σ exactly as the eval-mode forward computes it (one power step from the stored u, not
    written back; fp32): v = normalize(W u), u' = normalize(Wᵀ v), σ = vᵀ W u'."""
    sigma, _ = power_iteration(weight.detach().float().flatten(1), u.detach().float(), 1, eps)
    return sigma


def exact_sigma(weight: torch.Tensor) -> torch.Tensor:
    """The spectral norm of the raw weight (conv kernels flattened to out × in·k), fp32."""
    return torch.linalg.matrix_norm(weight.detach().float().flatten(1), ord=2)


def folded_weight(w: ReparamWeight) -> torch.Tensor:
    """W_hat = γ/σ·W, as the eval-mode forward computes it, in W's dtype."""
    sigma = eval_sigma(w.weight, w.u)
    return (w.gamma.detach().float() / sigma * w.weight.detach().float()).to(w.weight.dtype)


def fold_state_dict(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """A copy of ``state_dict`` with every σReparam'd weight folded into a plain ``weight``
    (the keys a plain module of the same shape has), other entries unchanged and in order."""
    folded = {w.module + ORIGINAL: w for w in reparam_weights(state_dict)}
    out: Dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if key in folded:
            w = folded[key]
            out[w.module + ".weight"] = folded_weight(w)
        elif key.endswith((GAMMA, U)):
            continue
        else:
            out[key] = value
    return out


def effective_weight(state_dict: Mapping[str, torch.Tensor], module: str) -> Optional[torch.Tensor]:
    """The weight ``module`` uses at eval: folded if σReparam'd, else the plain ``.weight``."""
    if module + ORIGINAL in state_dict:
        return folded_weight(ReparamWeight(module, state_dict[module + ORIGINAL],
                                           state_dict[module + GAMMA], state_dict[module + U]))
    return state_dict.get(module + ".weight")
