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
    (u and v are constants). A half-precision W is used in u's dtype (fp32) without keeping an
    fp32 copy of it for the backward pass.

    ``normalize_v=False`` is the cheaper step used to initialise u: u ← WᵀW u / ‖WᵀW u‖ (v is not
    normalised in between and there is no eps, so a zero W gives a non-finite u: the caller checks
    it); σ is then not computed (None).
    """
    if not isinstance(n_steps, int) or n_steps < 1:
        raise ValueError(f"n_steps must be an integer >= 1, got {n_steps!r}")
    if weight.dim() != 2:
        raise ValueError(f"power_iteration needs a 2-D weight (flatten(1) it), got shape {tuple(weight.shape)}")
    w = weight
    with torch.no_grad():
        weight = weight.to(u.dtype)  # a half-precision weight: the steps in u's (fp32) precision
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
    return _SpectralValue.apply(w, u, v), u


class _SpectralValue(torch.autograd.Function):
    """σ = vᵀ W u in u's dtype, with dσ/dW = v uᵀ (u, v constants). Saves only u and v: autograd of
    ``dot(v, mv(W.float(), u))`` would keep an fp32 copy of a half-precision W alive until the
    backward pass. Same operations as that autograd graph, so fp32 results are bit-identical."""

    @staticmethod
    def forward(ctx, weight, u, v):
        ctx.save_for_backward(u, v)
        ctx.weight_dtype = weight.dtype
        return torch.dot(v, torch.mv(weight.to(u.dtype), u))

    @staticmethod
    def backward(ctx, grad):
        u, v = ctx.saved_tensors
        return torch.outer(grad * v, u).to(ctx.weight_dtype), None, None
