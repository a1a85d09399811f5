"""The n-gram LM (Witten-Bell) and its shallow fusion into CTC prefix beam search, on tiny inputs."""
import math

import pytest
import torch

from sigma_plugin.decoding.ctc_beam import ctc_beam_decode, ctc_prefix_beam_search
from sigma_plugin.decoding.ngram_lm import NgramLM

BOS, EOS, V = 0, 2, 8  # ids as in a fairseq dictionary; tokens 4..7 are "letters"


def lm(order=3):
    return NgramLM.train([[4, 5, 6], [4, 5, 6], [4, 5, 7], [6, 6]], order, V, BOS, EOS)


@pytest.mark.parametrize("history", [[], [4], [4, 5], [7, 7, 7], [1, 3]])
def test_probabilities_sum_to_one(history):
    m = lm()
    assert sum(math.exp(m.log_prob(history, t)) for t in range(V)) == pytest.approx(1.0)


def test_seen_continuations_are_likely_and_smoothing_keeps_the_rest_possible():
    m = lm()
    assert m.log_prob([4, 5], 6) > math.log(0.5) > m.log_prob([4, 5], 7) > m.log_prob([4, 5], 4) > -math.inf
    assert m.log_prob([], 4) > m.log_prob([], 5)            # sentences start with 4 (after bos)
    assert m.sentence_log_prob([4, 5, 6]) > m.sentence_log_prob([6, 5, 4])


def test_save_and_load_give_the_same_model(tmp_path):
    m = lm(4)
    m.save(tmp_path / "lm.gz")
    back = NgramLM.load(tmp_path / "lm.gz")
    assert (back.order, back.vocab_size, back.bos, back.eos) == (4, V, BOS, EOS)
    for h in ([], [4], [4, 5], [5, 6, 6]):
        for t in range(V):
            assert back.log_prob(h, t) == m.log_prob(h, t)
    (tmp_path / "bad.gz").write_text("not gzip")
    with pytest.raises(ValueError, match="bad.gz: cannot read an n-gram LM"):
        NgramLM.load(tmp_path / "bad.gz")


def test_fusion_picks_the_labelling_the_lm_prefers():
    # Frames: "4", then "5" or "7" almost tied (7 slightly ahead), then "6". The LM has seen 4 5 6.
    frames = torch.full((3, V), -20.0)
    frames[0, 4] = 0.0
    frames[1, 7], frames[1, 5] = math.log(0.55), math.log(0.45)
    frames[2, 6] = 0.0
    acoustic = ctc_prefix_beam_search(frames, blank=1, beam_size=4)
    assert acoustic[0][0] == [4, 7, 6]
    fused = ctc_prefix_beam_search(frames, blank=1, beam_size=4, lm=lm(), lm_weight=0.5, token_bonus=1.0)
    assert fused[0][0] == [4, 5, 6]
    assert [h[1] for h in fused] == sorted((h[1] for h in fused), reverse=True)
    # weight 0 and no bonus: the LM changes nothing
    assert ctc_prefix_beam_search(frames, blank=1, beam_size=4, lm=lm(), lm_weight=0.0) == acoustic
    batch = ctc_beam_decode(frames.unsqueeze(1), torch.tensor([3]), 1, beam_size=4, lm=lm(), lm_weight=0.5)
    assert batch == [[4, 5, 6]]
    with pytest.raises(ValueError, match="lm_weight must be >= 0"):
        ctc_prefix_beam_search(frames, blank=1, lm=lm(), lm_weight=-1.0)


def test_bad_orders_and_empty_text_are_named():
    with pytest.raises(ValueError, match="order must be >= 1"):
        NgramLM.train([[4]], 0, V, BOS, EOS)
    with pytest.raises(ValueError, match="no sentences"):
        NgramLM.train([], 3, V, BOS, EOS)


def test_train_lm_names_a_data_folder_without_vocabulary(tmp_path):
    import subprocess
    import sys
    res = subprocess.run([sys.executable, "-m", "sigma_plugin.asr.train_lm", "--data-dir", str(tmp_path),
                          "--train-subsets", "train", "--out", str(tmp_path / "lm.gz")], capture_output=True, text=True)
    assert res.returncode == 2 and "config.yaml: no SentencePiece model named there" in res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "lm.gz").exists()
