"""Recompute the attention probabilities that fused attention kernels never return.

fairseq's encoder/decoder layers call their attention with ``need_weights=False`` (and
often through ``F.multi_head_attention_forward``), so the probabilities needed for
entropy are not available. ``AttentionProbe`` hooks attention modules only inside a
``capture()`` block and recomputes softmax(q kᵀ·scaling + masks) from the module's own
q/k projections; outside a capture no hook is installed, so ordinary steps pay nothing.

Pure torch: it duck-types any module with ``q_proj``, ``k_proj``, ``num_heads`` and
``scaling`` and a ``forward(query, key, value, key_padding_mask=..., attn_mask=...,
incremental_state=...)`` taking (time, batch, channel) tensors -- fairseq's
``MultiheadAttention`` among them.
"""
from __future__ import annotations

import contextlib
import inspect
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .entropy import attention_entropy, entropy_lower_bound
from .parametrization import frozen_power_iteration


def is_probeable_attention(module: nn.Module) -> bool:
    return all(hasattr(module, a) for a in ("q_proj", "k_proj", "num_heads", "scaling"))


def _augment(x: torch.Tensor) -> torch.Tensor:
    """[x, 1]: folds a projection's bias into its matrix (z = [x,1] [W, b]ᵀ)."""
    return torch.cat([x, x.new_ones(*x.shape[:-1], 1)], dim=-1)


def _augmented_head_weights(proj: nn.Linear, num_heads: int) -> torch.Tensor:
    """(H, C+1, D): per-head [W; b]ᵀ so that q_h = [x,1] @ result[h]."""
    w = proj.weight.float()
    b = proj.bias.float() if proj.bias is not None else w.new_zeros(w.shape[0])
    wb = torch.cat([w, b[:, None]], dim=1)  # (H*D, C+1)
    return wb.view(num_heads, -1, wb.shape[1]).transpose(1, 2)


@torch.no_grad()
def qk_spectral_norm(attn: nn.Module, include_bias: bool = True) -> torch.Tensor:
    """σ_h = ‖scaling · W_Q,h W_K,hᵀ‖₂ per head, shape (H,): the σ of Theorem 3.1.

    With ``include_bias`` the projections' biases are folded in ([W, b] acting on [x, 1]),
    which keeps the entropy bound valid for biased projections. Computed through thin QR
    factors, so the cost is a D×D SVD per head instead of C×C. Reading σReparam weights here
    does not advance their power iteration.
    """
    with frozen_power_iteration():
        return _qk_spectral_norm(attn, include_bias)


def _qk_spectral_norm(attn: nn.Module, include_bias: bool) -> torch.Tensor:
    h = attn.num_heads
    if include_bias:
        wq = _augmented_head_weights(attn.q_proj, h)
        wk = _augmented_head_weights(attn.k_proj, h)
    else:
        wq = attn.q_proj.weight.float().view(h, -1, attn.q_proj.weight.shape[1]).transpose(1, 2)
        wk = attn.k_proj.weight.float().view(h, -1, attn.k_proj.weight.shape[1]).transpose(1, 2)
    # wq, wk: (H, C', D).  ‖wq wkᵀ‖ = ‖Rq Rkᵀ‖ with wq = Qq Rq, wk = Qk Rk.
    rq = torch.linalg.qr(wq, mode="r")[1]
    rk = torch.linalg.qr(wk, mode="r")[1]
    return abs(attn.scaling) * torch.linalg.matrix_norm(rq @ rk.transpose(1, 2), ord=2)


@dataclass
class AttentionRecord:
    """What one attention module saw during a capture (summable across batches/workers)."""
    heads: int
    entropy_sum: torch.Tensor = None   # (H,) Σ over valid queries of Ent(A_i)
    norm_entropy_sum: torch.Tensor = None  # (H,) Σ over valid queries of Ent(A_i) / log(valid keys)
    bound_sum: torch.Tensor = None     # (H,) Σ over valid queries of the Theorem 3.1 bound
    count: float = 0.0                 # number of valid queries
    sigma_qk: torch.Tensor = None      # (H,) ‖W_Q,h W_K,hᵀ‖₂·scaling, biases folded in
    probs: List[torch.Tensor] = field(default_factory=list)  # only with keep_probs

    def mean_entropy(self) -> torch.Tensor:
        return self.entropy_sum / max(self.count, 1.0)

    def mean_norm_entropy(self) -> torch.Tensor:
        return self.norm_entropy_sum / max(self.count, 1.0)

    def mean_bound(self) -> torch.Tensor:
        return self.bound_sum / max(self.count, 1.0)


class AttentionProbe:
    """Entropy (and optionally probabilities) of named attention modules, on request.

    >>> probe = AttentionProbe({"enc_self.0": layer.self_attn})
    >>> with probe.capture(query_padding_masks={"dec": tgt_pad}) as records:
    ...     model(**batch)
    >>> records["enc_self.0"].mean_entropy()   # (heads,)

    ``groups`` maps a module name to the key of ``query_padding_masks`` that holds its
    queries' padding (B, Tq); self-attention falls back to its key padding mask.
    """

    def __init__(self, modules: Dict[str, nn.Module], groups: Optional[Dict[str, str]] = None):
        for name, m in modules.items():
            if not is_probeable_attention(m):
                raise TypeError(f"{name}: {type(m).__name__} has no q_proj/k_proj/num_heads/scaling")
            if getattr(m, "bias_k", None) is not None or getattr(m, "add_zero_attn", False):
                raise ValueError(f"{name}: add_bias_kv / add_zero_attn attention is not supported by the probe")
        self.modules = dict(modules)
        self.groups = dict(groups or {})

    @contextlib.contextmanager
    def capture(self, query_padding_masks: Optional[Dict[str, torch.Tensor]] = None,
                keep_probs: bool = False, bound: bool = True):
        records: Dict[str, AttentionRecord] = {}
        handles = []
        for name, m in self.modules.items():
            qmask = (query_padding_masks or {}).get(self.groups.get(name))
            hook = self._make_hook(name, records, qmask, keep_probs, bound)
            handles.append(m.register_forward_hook(hook, with_kwargs=True))
        try:
            yield records
        finally:
            for hd in handles:
                hd.remove()

    def _make_hook(self, name, records, query_mask, keep_probs, bound):
        def hook(module, args, kwargs, output):
            call = _bind_attention_call(module, args, kwargs)
            if call.get("incremental_state") is not None:
                return  # step-by-step decoding: keys come from a cache, skip
            with torch.no_grad():
                _record(module, name, records, call, query_mask, keep_probs, bound)
        return hook


_SIGNATURES: Dict[type, inspect.Signature] = {}


def _bind_attention_call(module: nn.Module, args, kwargs) -> dict:
    sig = _SIGNATURES.get(type(module))
    if sig is None:
        sig = _SIGNATURES[type(module)] = inspect.signature(module.forward)
    bound = sig.bind_partial(*args, **kwargs)
    return dict(bound.arguments)


def attention_probs(module: nn.Module, query: torch.Tensor, key: Optional[torch.Tensor] = None,
                    key_padding_mask: Optional[torch.Tensor] = None,
                    attn_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """softmax(q kᵀ·scaling + attn_mask) with padded keys masked: (B, H, Tq, Tk), fp32.

    query/key are (T, B, C) as fairseq passes them; ``key=None`` means self-attention.
    σReparam'd projections are read without advancing their power iteration, so probing
    leaves training exactly as it would be without it.
    """
    key = query if key is None else key
    tq, b, _ = query.shape
    tk = key.shape[0]
    h = module.num_heads
    with frozen_power_iteration():
        q = module.q_proj(query).float() * module.scaling
        k = module.k_proj(key).float()
    q = q.view(tq, b, h, -1).permute(1, 2, 0, 3)  # (B, H, Tq, D)
    k = k.view(tk, b, h, -1).permute(1, 2, 0, 3)
    logits = q @ k.transpose(-1, -2)
    if attn_mask is not None:
        am = attn_mask.float() if attn_mask.dtype != torch.bool else \
            torch.zeros_like(attn_mask, dtype=torch.float).masked_fill(attn_mask, float("-inf"))
        logits = logits + (am[None, None] if am.dim() == 2 else am.view(b, h, tq, tk))
    if key_padding_mask is not None:
        logits = logits.masked_fill(key_padding_mask[:, None, None, :].bool(), float("-inf"))
    return F.softmax(logits, dim=-1)


def _record(module, name, records, call, query_mask, keep_probs, bound):
    query = call["query"]
    key = call.get("key")
    key = query if key is None else key
    kpm = call.get("key_padding_mask")
    probs = attention_probs(module, query, key, kpm, call.get("attn_mask"))
    if query_mask is None and kpm is not None and key is query:
        query_mask = kpm  # self-attention: queries are the keys
    if query_mask is not None and tuple(query_mask.shape) != (probs.shape[0], probs.shape[2]):
        raise ValueError(f"{name}: query padding mask has shape {tuple(query_mask.shape)}, "
                         f"expected (batch, tgt_len) = {(probs.shape[0], probs.shape[2])}")
    # Fully masked rows (all keys -inf) give nan probabilities: treat those queries as padding.
    dead = torch.isnan(probs).any(-1).any(1)  # (B, Tq)
    if dead.any():
        probs = torch.nan_to_num(probs, nan=0.0)
        query_mask = dead if query_mask is None else (query_mask.bool() | dead)
    ent_sum, count = attention_entropy(probs, kpm, query_mask, reduce=False)
    key_counts = _key_counts(kpm, call.get("attn_mask"), probs)
    rec = records.get(name)
    if rec is None:
        rec = records[name] = AttentionRecord(heads=module.num_heads,
                                              entropy_sum=torch.zeros_like(ent_sum),
                                              norm_entropy_sum=torch.zeros_like(ent_sum),
                                              bound_sum=torch.zeros_like(ent_sum))
        rec.sigma_qk = qk_spectral_norm(module)
    rec.entropy_sum += ent_sum
    rec.norm_entropy_sum += attention_entropy(probs, kpm, query_mask, reduce=False, normalize=True,
                                              key_counts=key_counts)[0]
    rec.count += float(count)
    if bound:
        rec.bound_sum += bound_rows(rec.sigma_qk, query, key, kpm, key_counts, query_mask).sum(dim=(1, 2))
    if keep_probs:
        rec.probs.append(probs)


# An additive float mask entry at or below this blocks its key: exp(-1e4) is 0 in fp32 (fairseq
# masks with -inf, -1e8 or, in fp16, -1e4).
BLOCKING_LOGIT = -1e4


def _key_counts(kpm, attn_mask, probs) -> torch.Tensor:
    """Number of keys each query may attend to: (B, Tq), or (B, H, Tq) for a per-head 3-D mask
    (fairseq's (B·H, Tq, Tk)); padding and blocked mask entries (True, or a float ≤ BLOCKING_LOGIT:
    -inf, -1e8, -1e4) are excluded."""
    b, h, tq, tk = probs.shape
    allowed = torch.ones(b, 1, tq, tk, dtype=torch.bool, device=probs.device)
    if kpm is not None:
        allowed = allowed & ~kpm.bool()[:, None, None, :]
    if attn_mask is not None:
        blocked = attn_mask if attn_mask.dtype == torch.bool else attn_mask <= BLOCKING_LOGIT
        blocked = blocked[None, None] if blocked.dim() == 2 else blocked.reshape(b, -1, tq, tk)
        allowed = allowed & ~blocked
    counts = allowed.sum(-1)  # (B, 1 or H, Tq)
    return counts[:, 0] if counts.shape[1] == 1 else counts


def _spectral_norms(x: torch.Tensor) -> torch.Tensor:
    """‖X_b‖₂ for a batch (B, T, C): sqrt of the top eigenvalue of the smaller Gram matrix
    (X Xᵀ or Xᵀ X). Much cheaper than the batched SVD behind matrix_norm(ord=2) on CPU."""
    gram = x @ x.transpose(1, 2) if x.shape[1] <= x.shape[2] else x.transpose(1, 2) @ x
    return torch.linalg.eigvalsh(gram.double())[:, -1].clamp_min(0).sqrt().to(x.dtype)


def bound_rows(sigma_qk, query, key, kpm, key_counts, query_mask=None) -> torch.Tensor:
    """The Theorem 3.1 bound for every query, (H, B, Tq); 0 at padded queries.

    For query i: s_i = σ_h · ‖[x_i,1]‖ · ‖[X_k,1]‖₂ bounds the norm of its logit row, and T_i
    is the number of keys it may attend to (``key_counts`` (B, Tq): padding and causal masks
    taken into account). A query with a single attendable key has entropy 0: bound 0.
    """
    xq = _augment(query.float()).transpose(0, 1)  # (B, Tq, C+1)
    xk = _augment(key.float()).transpose(0, 1)    # (B, Tk, C+1)
    if kpm is not None:
        xk = xk.masked_fill(kpm.bool()[:, :, None], 0.0)
    k_norm = _spectral_norms(xk)                               # (B,)
    q_norm = xq.norm(dim=-1)                                   # (B, Tq)
    s = sigma_qk[:, None, None] * (q_norm * k_norm[:, None])[None]  # (H, B, Tq)
    t = key_counts.to(s.dtype)
    t = (t[None] if t.dim() == 2 else t.transpose(0, 1)).expand_as(s)  # (H, B, Tq)
    lb = entropy_lower_bound(s, t.clamp_min(2)).float().masked_fill(t < 2, 0.0)
    if query_mask is not None:
        lb = lb.masked_fill(query_mask.bool()[None], 0.0)
    return lb
