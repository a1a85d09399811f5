"""The power iteration behind σReparam's σ (pure torch): the one place its maths lives, shared by
the parametrization's forward, the state-dict readers (``sigma-inspect``/``sigma-export``) and
checkpoint averaging."""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F

EPS = 1e-12  # F.normalize's default, and the parametrization's


def power_iteration(weight: torch.Tensor, u: torch.Tensor, n_steps: int = 1, eps: float = EPS,
                    normalize_v: bool = True) -> Tuple[Optional[torch.Tensor], torch.Tensor]:
    """``n_steps`` power-iteration steps for σ = ‖W‖₂ of a 2-D ``weight`` W from ``u`` (a vector
    of W's input size, in W's dtype). Each step, without grad:

        v = normalize(W u),  u = normalize(Wᵀ v)        (F.normalize with ``eps``)

    Returns ``(sigma, u)``: the new u (the caller decides whether to store it) and σ = vᵀ W u of
    the last step, computed in the caller's grad mode so that its gradient flows through W only
    (u and v are constants).

    ``normalize_v=False`` is the cheaper step used to initialise u: u ← WᵀW u / ‖WᵀW u‖ (v is not
    normalised in between and there is no eps, so a zero W gives a non-finite u: the caller checks
    it); σ is then not computed (None).
    """
    if not isinstance(n_steps, int) or n_steps < 1:
        raise ValueError(f"n_steps must be an integer >= 1, got {n_steps!r}")
    if weight.dim() != 2:
        raise ValueError(f"power_iteration needs a 2-D weight (flatten(1) it), got shape {tuple(weight.shape)}")
    with torch.no_grad():
        wt = weight.t()
        for _ in range(n_steps):
            if normalize_v:
                v = F.normalize(torch.mv(weight, u), dim=0, eps=eps)
                u = F.normalize(torch.mv(wt, v), dim=0, eps=eps)
            else:
                u = torch.mv(wt, torch.mv(weight, u))
                u = u / torch.linalg.vector_norm(u)
    if not normalize_v:
        return None, u
    return torch.dot(v, torch.mv(weight, u)), u
