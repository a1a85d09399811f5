"""Lexicon-free CTC prefix beam search against greedy decoding and exhaustive search on tiny emissions."""
import itertools
import math

import pytest
import torch

from sigma_plugin.decoding.ctc_greedy import ctc_greedy_decode
from sigma_plugin.decoding.ctc_beam import ctc_beam_decode, ctc_prefix_beam_search, labelling_log_prob

BLANK = 0


def collapse(path):
    out, prev = [], None
    for p in path:
        if p != prev and p != BLANK:
            out.append(p)
        prev = p
    return tuple(out)


def exhaustive(logp):
    """Every labelling's probability, summed over all T^V paths (tiny inputs only)."""
    probs = {}
    for path in itertools.product(range(logp.shape[1]), repeat=logp.shape[0]):
        p = math.exp(sum(logp[t, c].item() for t, c in enumerate(path)))
        probs[collapse(path)] = probs.get(collapse(path), 0.0) + p
    return probs


def test_beam_finds_the_labelling_that_greedy_misses():
    # Each frame: blank 0.6, "a" 0.4. Best path "--" gives "" (0.36); "a" has 0.64 over 3 paths.
    logp = torch.tensor([[0.6, 0.4], [0.6, 0.4]]).log()
    assert ctc_greedy_decode(logp.unsqueeze(1), torch.tensor([2]), BLANK) == [[]]
    assert ctc_beam_decode(logp.unsqueeze(1), torch.tensor([2]), BLANK, beam_size=4) == [[1]]
    hyps = ctc_prefix_beam_search(logp, BLANK, beam_size=4)
    assert hyps[0][0] == [1] and math.exp(hyps[0][1]) == pytest.approx(0.64)
    assert hyps[1][0] == [] and math.exp(hyps[1][1]) == pytest.approx(0.36)


def test_repeats_need_a_blank_between_them():
    one_hot = torch.full((5, 3), -30.0)
    for t, c in enumerate([1, 1, 0, 1, 2]):           # "a a - a b" -> "a a b"
        one_hot[t, c] = 0.0
    assert ctc_beam_decode(one_hot.unsqueeze(1), torch.tensor([5]), BLANK) == [[1, 1, 2]]
    assert ctc_greedy_decode(one_hot.unsqueeze(1), torch.tensor([5]), BLANK) == [[1, 1, 2]]


@pytest.mark.parametrize("seed", range(6))
def test_wide_beam_matches_exhaustive_search(seed):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(5, 3, generator=gen) * 1.5
    logp = torch.log_softmax(logits, -1)
    probs = exhaustive(logp)
    best = max(probs, key=probs.get)
    hyps = ctc_prefix_beam_search(logits, BLANK, beam_size=64, token_beam=3, prune=1e9)
    assert tuple(hyps[0][0]) == best
    assert math.exp(hyps[0][1]) == pytest.approx(probs[best], rel=1e-5)
    for labels, score in hyps:                        # every score is exact, and agrees with CTC loss
        assert math.exp(score) == pytest.approx(probs[tuple(labels)], rel=1e-5)
        assert score == pytest.approx(labelling_log_prob(logits, labels, BLANK), abs=1e-4)
    assert math.exp(hyps[0][1]) >= probs[collapse(logp.argmax(-1).tolist())] - 1e-9  # never worse than greedy


def test_batch_interface_respects_lengths_and_agrees_with_greedy_on_peaked_frames():
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 6, (12, 3), generator=gen)
    logits = torch.nn.functional.one_hot(ids, 6).float() * 20                      # (T, B, V), peaked
    lengths = torch.tensor([12, 7, 0])
    assert ctc_beam_decode(logits, lengths, BLANK) == ctc_greedy_decode(logits, lengths, BLANK)
    assert ctc_beam_decode(logits, lengths, BLANK)[2] == []


@pytest.mark.parametrize("call, error", [
    (lambda: ctc_prefix_beam_search(torch.zeros(2, 3, 4), BLANK), r"\(time, vocab\)"),
    (lambda: ctc_prefix_beam_search(torch.zeros(2, 3), BLANK, beam_size=0), "beam_size must be >= 1"),
    (lambda: ctc_prefix_beam_search(torch.zeros(2, 3), 3), "blank index 3 is outside the vocabulary of 3"),
    (lambda: ctc_beam_decode(torch.zeros(2, 3), torch.tensor([2]), BLANK), r"\(time, batch, vocab\)"),
])
def test_mistakes_are_named(call, error):
    with pytest.raises(ValueError, match=error):
        call()
