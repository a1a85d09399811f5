"""Lexicon-free CTC prefix beam search, optionally with a token language model, pure torch.

Greedy decoding keeps the best frame-by-frame path; a labelling's probability is however the
sum over all paths that collapse to it (repeats merged, blanks removed), and the best path
need not belong to the best labelling. Prefix beam search (Hannun et al. 2014, without the
LM term) keeps the `beam_size` best prefixes, each with two log-probabilities: of the paths
ending in blank and of those ending in its last token, so that "a a" (via a blank) and "a"
(a repeat) are told apart.

With a language model (shallow fusion, Hannun et al. 2014, eq. 3): each token appended to a prefix
adds ``lm_weight · ln P_LM(token | prefix) + token_bonus`` to its score, and the final ranking adds
``lm_weight · ln P_LM(</s> | prefix)``. The bonus offsets the LM's cost per token, which would
otherwise favour short hypotheses. ``lm`` is any object with ``log_prob(history, token)`` and
``eos`` (``sigma_plugin.decoding.ngram_lm.NgramLM``).
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch

NEG_INF = float("-inf")


def _logaddexp(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    hi, lo = (a, b) if a > b else (b, a)
    return hi + math.log1p(math.exp(lo - hi))


def ctc_prefix_beam_search(lprobs: torch.Tensor, blank: int, beam_size: int = 8,
                           token_beam: Optional[int] = None, prune: float = 12.0, lm=None,
                           lm_weight: float = 0.0, token_bonus: float = 0.0
                           ) -> List[Tuple[List[int], float]]:
    """Best labellings of one utterance, best first, with their log-probabilities (with an
    ``lm``: their fused scores, the LM terms included).

    lprobs: (T, V) frame scores (log-softmaxed here, so logits or log-probs both work).
    At each frame only the `token_beam` best tokens (default: beam_size) within `prune` nats
    of the frame's best are extended.
    """
    if lprobs.dim() != 2:
        raise ValueError(f"lprobs must be (time, vocab), got shape {tuple(lprobs.shape)}")
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    n_vocab = lprobs.shape[1]
    if not 0 <= blank < n_vocab:
        raise ValueError(f"blank index {blank} is outside the vocabulary of {n_vocab} tokens")
    if lm is not None and lm_weight < 0:
        raise ValueError(f"lm_weight must be >= 0, got {lm_weight}")
    logp = torch.log_softmax(lprobs.detach().float(), dim=-1).cpu()
    fuse = lm is not None and (lm_weight != 0 or token_bonus != 0)

    def lm_term(prefix, token):  # added once, when token is appended to prefix
        return lm_weight * lm.log_prob(prefix, token) + token_bonus

    k = min(n_vocab, token_beam or beam_size)
    top_scores, top_ids = logp.topk(k, dim=-1)
    # prefix -> (log P(paths ending in blank), log P(paths ending in the prefix's last token))
    beams: Dict[Tuple[int, ...], Tuple[float, float]] = {(): (0.0, NEG_INF)}
    for t in range(logp.shape[0]):
        frame = logp[t].tolist()
        floor = top_scores[t, 0].item() - prune
        tokens = [i for i, s in zip(top_ids[t].tolist(), top_scores[t].tolist()) if s >= floor]
        nxt: Dict[Tuple[int, ...], List[float]] = {}

        def add(prefix, blank_end, token_end):
            if blank_end == NEG_INF and token_end == NEG_INF:
                return                                               # unreachable (e.g. "a a" in too few frames)
            cur = nxt.setdefault(prefix, [NEG_INF, NEG_INF])
            cur[0] = _logaddexp(cur[0], blank_end)
            cur[1] = _logaddexp(cur[1], token_end)

        for prefix, (pb, pnb) in beams.items():
            total = _logaddexp(pb, pnb)
            add(prefix, total + frame[blank], NEG_INF)              # stay, via blank
            last = prefix[-1] if prefix else None
            if last is not None:
                add(prefix, NEG_INF, pnb + frame[last])              # repeat merges into the prefix
            for c in tokens:
                if c == blank:
                    continue
                # a repeated token extends the prefix only across a blank
                extend = (pb if c == last else total) + frame[c]
                add(prefix + (c,), NEG_INF, extend + lm_term(prefix, c) if fuse else extend)
        ranked = sorted(nxt.items(), key=lambda kv: _logaddexp(*kv[1]), reverse=True)
        beams = {p: (s[0], s[1]) for p, s in ranked[:beam_size]}
    final = [(list(p), _logaddexp(*s) + (lm_weight * lm.log_prob(p, lm.eos) if fuse else 0.0))
             for p, s in beams.items()]
    return sorted(final, key=lambda h: h[1], reverse=True)


def ctc_beam_decode(lprobs: torch.Tensor, lengths: torch.Tensor, blank: int, beam_size: int = 8,
                    token_beam: Optional[int] = None, prune: float = 12.0, lm=None,
                    lm_weight: float = 0.0, token_bonus: float = 0.0) -> List[List[int]]:
    """lprobs: (T, B, V) scores; lengths: (B,) valid frames. One best token-id list per utterance
    (the same interface as greedy decoding)."""
    if lprobs.dim() != 3:
        raise ValueError(f"lprobs must be (time, batch, vocab), got shape {tuple(lprobs.shape)}")
    out = []
    for b, n in enumerate(lengths.tolist()):
        if n == 0:
            out.append([])
            continue
        hyps = ctc_prefix_beam_search(lprobs[:n, b], blank, beam_size, token_beam, prune, lm, lm_weight,
                                      token_bonus)
        out.append(hyps[0][0])
    return out


def labelling_log_prob(lprobs: torch.Tensor, labels: Sequence[int], blank: int) -> float:
    """log P(labels | frames) summed over all alignments (torch's CTC loss, negated)."""
    logp = torch.log_softmax(lprobs.detach().float(), dim=-1).unsqueeze(1)
    target = torch.tensor([list(labels)], dtype=torch.long)
    loss = torch.nn.functional.ctc_loss(logp, target, torch.tensor([logp.shape[0]]),
                                        torch.tensor([len(labels)]), blank=blank, reduction="sum",
                                        zero_infinity=False)
    return -float(loss)
