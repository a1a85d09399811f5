"""Attention entropy and its lower bound (Zhai et al., ICML 2023, §3 and Theorem 3.1)."""
from __future__ import annotations

from typing import Optional, Union

import torch

Number = Union[float, torch.Tensor]


def attention_entropy(probs: torch.Tensor, key_padding_mask: Optional[torch.Tensor] = None,
                      query_padding_mask: Optional[torch.Tensor] = None,
                      reduce: bool = True, normalize: bool = False,
                      key_counts: Optional[torch.Tensor] = None):
    """Per-head attention entropy Ent(A_i) = −Σ_j A_ij log A_ij averaged over valid queries.

    probs: (B, H, Tq, Tk) attention probabilities (rows sum to 1 over valid keys).
    key_padding_mask: (B, Tk) bool, True at padded keys; their probabilities are ignored.
    query_padding_mask: (B, Tq) bool, True at padded queries; those rows are not averaged.
    Returns (H,) mean entropy per head in nats, or with ``reduce=False`` the pair
    (sum over valid queries (H,), number of valid queries) -- summable across workers.
    Exact zeros contribute 0 (0·log 0 := 0), so one-hot rows give exactly 0.
    With ``normalize`` each row's entropy is divided by log(number of valid keys), the
    entropy of uniform attention, giving values in [0, 1] that do not depend on sentence
    length (raw entropy grows like log T, so batches of long and short sentences differ); a row
    with a single attendable key counts as 1 (uniform).
    ``key_counts`` (B, Tq), or (B, H, Tq) for per-head masks, gives each query's number of
    attendable keys (e.g. causal masks); by default it is the example's number of unpadded keys.
    """
    if probs.dim() != 4:
        raise ValueError(f"probs must be (batch, heads, tgt_len, src_len), got shape {tuple(probs.shape)}")
    b, h, tq, tk = probs.shape
    p = probs.float()
    if key_padding_mask is not None:
        if key_padding_mask.shape != (b, tk):
            raise ValueError(f"key_padding_mask must be ({b}, {tk}), got {tuple(key_padding_mask.shape)}")
        p = p.masked_fill(key_padding_mask[:, None, None, :].bool(), 0.0)
    ent = -torch.special.xlogy(p, p).sum(-1)  # (B, H, Tq)
    if normalize:
        if key_counts is None:
            n_keys = (tk - key_padding_mask.sum(-1)).float() if key_padding_mask is not None else p.new_full((b,), tk)
            key_counts = n_keys[:, None].expand(b, tq)
        # A row with a single attendable key is both uniform and one-hot (entropy 0 = log 1, the
        # maximum): its normalised entropy is 1, so uniform causal attention gives exactly 1.
        counts = key_counts.float()
        counts = counts[:, None, :] if counts.dim() == 2 else counts
        ent = torch.where(counts >= 2, ent / torch.log(counts.clamp_min(2.0)), torch.ones_like(ent))
    if query_padding_mask is not None:
        if query_padding_mask.shape != (b, tq):
            raise ValueError(f"query_padding_mask must be ({b}, {tq}), got {tuple(query_padding_mask.shape)}")
        valid = (~query_padding_mask.bool()).float()
    else:
        valid = ent.new_ones(b, tq)
    total = (ent * valid[:, None, :]).sum(dim=(0, 2))
    count = valid.sum()
    if not reduce:
        return total, count
    return total / count.clamp_min(1.0)


def entropy_lower_bound(s: Number, T: Number) -> torch.Tensor:
    """Theorem 3.1: the smallest entropy of softmax(z) over logits z with ‖z − mean(z)‖₂ ≤ s.

    With T keys and β = exp(−s·√(T/(T−1))):
        Ent ≥ log(1 + (T−1)β) + s·√(T(T−1))·β / (1 + (T−1)β).
    The minimiser puts one logit a gap g = s·√(T/(T−1)) above the T−1 others (the
    centred vector g·(e₁ − 1/T) has norm exactly s). For attention logits
    z = x_i W_Q W_Kᵀ Xᵀ / √d, s ≤ σ·‖x_i‖·‖X‖₂ ≤ σ·‖XXᵀ‖₂ with σ = ‖W_Q W_Kᵀ‖₂/√d.
    Decays like exp(−s): bounding σ, as σReparam does, bounds entropy from below.
    """
    s = torch.as_tensor(s, dtype=torch.float64)
    T = torch.as_tensor(T, dtype=torch.float64)
    if (T < 2).any():
        raise ValueError(f"entropy_lower_bound needs T >= 2 keys, got {T}")
    if (s < 0).any():
        raise ValueError(f"entropy_lower_bound needs s >= 0, got {s}")
    gap = s * torch.sqrt(T / (T - 1))
    beta = torch.exp(-gap)
    denom = 1 + (T - 1) * beta
    return torch.log(denom) + gap * (T - 1) * beta / denom

