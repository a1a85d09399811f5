"""python -m sigma_plugin.asr.decode_ctc: greedy and prefix beam search on a tiny CTC model,
both scored in one table."""
import subprocess
import sys

import pytest

from _asr_corpus import prepare, write_corpus
from _toy_mt import BIN, USER_DIR, run
from sigma_plugin.asr.score import read_hypotheses


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    dump = prepare(write_corpus(tmp_path_factory.mktemp("corpus"), n_train=6, n_dev=3),
                   tmp_path_factory.mktemp("dump"))
    save = tmp_path_factory.mktemp("ckpt")
    run([str(BIN / "fairseq-train"), str(dump), "--user-dir", USER_DIR, "--task", "speech_to_text",
         "--train-subset", "train-tone", "--valid-subset", "dev-tone", "--arch", "sigma_s2t_ctc_tiny",
         "--criterion", "sigma_ctc", "--optimizer", "lars", "--lr", "1.0", "--lr-scheduler", "fixed",
         "--max-tokens", "3000", "--max-update", "2", "--cpu", "--seed", "1", "--num-workers", "0",
         "--no-epoch-checkpoints", "--disable-validation", "--required-batch-size-multiple", "1",
         "--save-dir", str(save)])
    return dump, save / "checkpoint_last.pt"


def decode(dump, ckpt, out, *args):
    return subprocess.run([sys.executable, "-m", "sigma_plugin.asr.decode_ctc", str(dump), "--user-dir", USER_DIR,
                           "--task", "speech_to_text", "--gen-subset", "dev-tone", "--path", str(ckpt), "--cpu",
                           "--results-path", str(out), *args], capture_output=True, text=True)


def test_greedy_and_beam_decode_every_utterance(model, tmp_path):
    dump, ckpt = model
    greedy = decode(dump, ckpt, tmp_path / "greedy" / "dev-tone")
    beam = decode(dump, ckpt, tmp_path / "beam" / "dev-tone", "--decode-method", "beam", "--beam", "4")
    assert greedy.returncode == 0 and beam.returncode == 0, greedy.stderr[-2000:] + beam.stderr[-2000:]
    assert "decoded 3 utterances (greedy)" in greedy.stderr and "decoded 3 utterances (beam, beam 4)" in beam.stderr
    for d in ("greedy", "beam"):
        assert sorted(read_hypotheses(tmp_path / d / "dev-tone" / "generate-dev-tone.txt")) == [0, 1, 2]
    res = subprocess.run([sys.executable, "-m", "sigma_plugin.asr.score", "--data-dir", str(dump), "--decode-dir",
                          str(tmp_path / "greedy"), str(tmp_path / "beam"), "--subsets", "dev-tone"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert [line.split("\t")[:3] for line in res.stdout.splitlines()[1:3]] == [["greedy", "dev-tone", "3"],
                                                                            ["beam", "dev-tone", "3"]]


def test_bad_decode_method_and_beam_are_named(model, tmp_path):
    dump, ckpt = model
    res = decode(dump, ckpt, tmp_path, "--decode-method", "viterbi")
    assert res.returncode == 2 and "--decode-method: invalid choice: 'viterbi'" in res.stderr
    res = decode(dump, ckpt, tmp_path, "--decode-method", "beam", "--beam", "0")
    assert res.returncode == 2 and "--beam must be >= 1, got 0" in res.stderr and "Traceback" not in res.stderr


def test_ngram_lm_is_trained_without_dev_sentences_and_fused_into_beam(model, tmp_path):
    from _asr_corpus import sentence
    from sigma_plugin.asr.train_lm import train_lm
    dump, ckpt = model
    extra = tmp_path / "more.txt"
    # dev holds sentence(0..2), train sentence(0..5): 2 of these 3 lines are dev sentences
    extra.write_text(f"{sentence(0)}\n{sentence(1).lower()}!\nsomething else entirely\n")
    lm_path = tmp_path / "lm" / "ngram4.lm.gz"
    stats = train_lm(dump, ["train-tone"], lm_path, [extra], ["dev-tone"], order=4)
    # the 6 transcripts minus the 3 that are also dev sentences, plus 1 of the 3 text lines
    assert stats["dropped_held_out"] == 2 and stats["transcripts"] == 6 and stats["sentences"] == 4
    res = decode(dump, ckpt, tmp_path / "lm_beam" / "dev-tone", "--decode-method", "beam", "--beam", "4",
                 "--lm-path", str(lm_path), "--lm-weight", "0.8", "--lm-token-bonus", "0.5")
    assert res.returncode == 0, res.stderr[-2000:]
    assert f"LM {lm_path} weight 0.8 bonus 0.5" in res.stderr
    assert sorted(read_hypotheses(tmp_path / "lm_beam" / "dev-tone" / "generate-dev-tone.txt")) == [0, 1, 2]
    res = decode(dump, ckpt, tmp_path, "--lm-path", str(lm_path))
    assert res.returncode == 2 and "--lm-path needs --decode-method beam" in res.stderr
    res = decode(dump, ckpt, tmp_path, "--decode-method", "beam", "--lm-path", str(tmp_path / "none.gz"))
    assert res.returncode == 2 and "no such file" in res.stderr and "Traceback" not in res.stderr


def test_lm_weight_grid_on_a_validation_subset(model, tmp_path):
    from sigma_plugin.asr.train_lm import train_lm
    dump, ckpt = model
    lm_path = tmp_path / "ngram3.lm.gz"
    train_lm(dump, ["train-tone"], lm_path, order=3)
    out = tmp_path / "tuning.tsv"
    res = subprocess.run([sys.executable, "-m", "sigma_plugin.asr.tune_lm", str(dump), "--user-dir", USER_DIR,
                          "--task", "speech_to_text", "--gen-subset", "dev-tone", "--path", str(ckpt), "--cpu",
                          "--lm-path", str(lm_path), "--beam", "3", "--lm-weights", "0,1", "--lm-token-bonuses", "0.5",
                          "--out", str(out)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    rows = out.read_text().splitlines()
    assert rows[0] == "lm_weight\tlm_token_bonus\twer\tcer" and len(rows) == 4 and rows[1].startswith("no LM")
    assert "best: --lm_weight " in res.stdout and "<- best" in res.stdout
    bad = subprocess.run([sys.executable, "-m", "sigma_plugin.asr.tune_lm", str(dump), "--user-dir", USER_DIR,
                          "--task", "speech_to_text", "--path", str(ckpt), "--lm-path", str(lm_path),
                          "--lm-weights", "a,b", "--out", str(out)], capture_output=True, text=True)
    assert bad.returncode == 2 and "--lm-weights: expected comma-separated numbers" in bad.stderr
