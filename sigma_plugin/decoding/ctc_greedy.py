"""Greedy (best-path) CTC decoding: argmax per frame, merge repeats, drop blanks. Pure torch."""
from __future__ import annotations

from typing import List

import torch


def ctc_greedy_decode(lprobs: torch.Tensor, lengths: torch.Tensor, blank: int) -> List[List[int]]:
    """lprobs: (T, B, V) scores; lengths: (B,) valid frames. Returns one token-id list per utterance."""
    if lprobs.dim() != 3:
        raise ValueError(f"lprobs must be (time, batch, vocab), got shape {tuple(lprobs.shape)}")
    best = lprobs.argmax(-1).t().cpu()  # (B, T)
    out = []
    for b, n in enumerate(lengths.tolist()):
        path = best[b, :n]
        if n == 0:
            out.append([])
            continue
        keep = torch.ones_like(path, dtype=torch.bool)
        keep[1:] = path[1:] != path[:-1]          # merge repeats ...
        keep &= path != blank                     # ... then remove blanks ("a - a" stays "a a")
        out.append(path[keep].tolist())
    return out
