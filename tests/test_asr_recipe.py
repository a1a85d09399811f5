"""egs/tts_en/asr1 end to end on a few utterances: every stage of recipes/asr.sh through WER."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from _asr_corpus import write_recipe_corpus

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "egs" / "tts_en" / "asr1" / "run.sh"
# docs/asr.md's quick start shows exactly these options.
TINY = ["--train_config", "conf/train_tiny.yaml", "--max_utts", "8", "--vocab_type", "char", "--nj", "2",
        "--n_average", "2", "--beam", "2", "--max_len_a", "0", "--max_len_b", "30"]


@pytest.fixture(scope="module")
def tts_root(tmp_path_factory):
    """Tone "speech" in the recipe's subset names: 12 training and 8 dev utterances."""
    return write_recipe_corpus(tmp_path_factory.mktemp("tts_en"), {"train-tts": 12, "dev-tts": 8})


def run_recipe(tts_root, tmp, *options):
    env = dict(os.environ, TTS_ROOT=str(tts_root), OMP_NUM_THREADS="1")
    cmd = ["bash", str(RUN), *TINY, "--dumpdir", str(tmp / "dump"), "--expdir", str(tmp / "exp"),
           "--python", sys.executable, *options]
    return subprocess.run(cmd, capture_output=True, text=True, env=env)


def test_docs_quick_start_is_the_tested_command():
    assert "egs/tts_en/asr1/run.sh " + " ".join(TINY) + " --dumpdir" in (ROOT / "docs" / "asr.md").read_text()


def results(decode_dir):
    lines = (decode_dir / "RESULTS.tsv").read_text().splitlines()
    return [dict(zip(lines[0].split("\t"), line.split("\t"))) for line in lines[1:]]


def test_tiny_recipe_all_stages_then_resume(tts_root, tmp_path):
    res = run_recipe(tts_root, tmp_path)
    assert res.returncode == 0, res.stderr[-4000:]
    for stage in range(1, 9):
        assert f"| asr.sh | ==== stage {stage}: " in res.stderr
    exp = tmp_path / "exp" / "train_tiny"
    assert "ent_enc_self_mean" in (exp / "train.log").read_text()
    assert list((exp / "plots").glob("*.png"))
    [row] = results(exp / "decode_checkpoint_avg_beam2")
    assert row["subset"] == "dev-tts" and row["utts"] == "8" and float(row["wer"]) >= 0 and float(row["cer"]) >= 0
    assert "dev-tts\t8\t" in res.stdout  # the score table is printed
    # per voice (SPEAKERS.txt): printed and written
    assert "dev-tts: per voice (2 voices)" in res.stdout and "tone:high" in res.stdout
    voices = (exp / "decode_checkpoint_avg_beam2" / "dev-tts" / "per_voice.tsv").read_text().splitlines()
    assert voices[0] == "voice\tutts\twords\twer\tchars\tcer" and len(voices) == 3
    # training copies at speed 0.9/1.0/1.1 (run.sh's default), dev-tts as it is
    train_ids = [line.split("\t")[0] for line in (tmp_path / "dump" / "train-tts.tsv").read_text().splitlines()[1:]]
    assert len(train_ids) == 24 and sum(i.startswith("sp0.9-") for i in train_ids) == 8
    assert "specaugment" in (tmp_path / "dump" / "config.yaml").read_text()
    assert len((tmp_path / "dump" / "dev-tts.tsv").read_text().splitlines()) == 9

    again = run_recipe(tts_root, tmp_path, "--stage", "2", "--stop_stage", "5")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "train-tts.tsv exists, skipping" in again.stderr and "config.yaml exists, skipping" in again.stderr
    assert "training finished earlier; skipping" in again.stderr and "checkpoint_avg.pt is up to date" in again.stderr

    # other decoding options: decoded and scored again; the same options: skipped
    beam = exp / "decode_checkpoint_avg_beam2"
    redo = run_recipe(tts_root, tmp_path, "--stage", "6", "--stop_stage", "7", "--max_len_b", "25")
    assert redo.returncode == 0, redo.stderr[-3000:]
    assert "dev-tts/.decode_options was made with other options; redoing" in redo.stderr
    assert "max_len_b=25" in (beam / "dev-tts" / ".decode_options").read_text()
    same = run_recipe(tts_root, tmp_path, "--stage", "6", "--stop_stage", "6", "--max_len_b", "25")
    assert same.returncode == 0 and "generate-dev-tts.txt is up to date; skipping" in same.stderr
    # scoring refuses hypotheses of other decoding options
    stale = run_recipe(tts_root, tmp_path, "--stage", "7", "--stop_stage", "7")
    assert stale.returncode != 0 and "Traceback" not in stale.stderr
    assert "was decoded from another data set, checkpoint or decoding options" in stale.stderr
    assert "rerun stage 6" in stale.stderr

    # other options: features and vocabulary redone, training refused (it would resume on other data)
    changed = run_recipe(tts_root, tmp_path, "--stage", "2", "--stop_stage", "4", "--max_utts", "6")
    assert changed.returncode != 0 and "Traceback" not in changed.stderr
    assert ".fbank_options was made with other options; redoing" in changed.stderr
    assert ".vocab_options was made with other options; redoing" in changed.stderr
    assert "was trained with other data or options" in changed.stderr
    assert len((tmp_path / "dump" / "dev-tts.tsv").read_text().splitlines()) == 7
    # ... and the old model is neither decoded on the new data nor its old output scored
    old_model = run_recipe(tts_root, tmp_path, "--stage", "6", "--stop_stage", "6", "--max_utts", "6")
    assert old_model.returncode != 0 and "was trained on other data than" in old_model.stderr
    old_output = run_recipe(tts_root, tmp_path, "--stage", "7", "--stop_stage", "7", "--max_utts", "6",
                            "--max_len_b", "25")
    assert old_output.returncode != 0 and "rerun stage 6" in old_output.stderr


def test_recipe_rejects_unknown_option_and_bad_train_subset(tts_root, tmp_path):
    res = run_recipe(tts_root, tmp_path, "--stage_typo", "3")
    assert res.returncode != 0 and "unknown option --stage_typo" in res.stderr
    res = run_recipe(tts_root, tmp_path, "--train_subsets", "dev-tts")
    assert res.returncode != 0 and "'dev-tts' must start with 'train'" in res.stderr


@pytest.mark.parametrize("option, value, message", [
    ("--speed_perturb", "0.9 fast", "--speed_perturb: 'fast' is not a factor"),
    ("--speed_perturb", "0.9 9", "--speed-perturb: speed factor must be a number in [0.25, 4], got 9.0"),
    ("--freq_warp", "lots", "--freq_warp must be a number (0 = off, e.g. 0.1), got 'lots'"),
    ("--noise_snr", "10", "--noise_snr must be LOW,HIGH in dB (e.g. 10,30), got '10'"),
    ("--noise_snr", "30,10", "--noise-snr must be LOW,HIGH in dB with LOW <= HIGH"),
    ("--decode_method", "greedy", "--decode_method: 'greedy' is not auto, beam, ctc_greedy, ctc_beam or ctc_beam_lm"),
    ("--beam", "0", "--beam must be a positive number, got '0'"),
])
def test_recipe_names_bad_augmentation_and_decoding_options(tts_root, tmp_path, option, value, message):
    stages = ("--stage", "6", "--stop_stage", "6") if option in ("--decode_method", "--beam") else ("--stop_stage", "2")
    res = run_recipe(tts_root, tmp_path, *stages, option, value)
    assert res.returncode != 0 and message in res.stderr and "Traceback" not in res.stderr, res.stderr[-2000:]


@pytest.mark.slow
def test_tiny_ctc_recipe_decodes_greedily(tts_root, tmp_path):
    lm_text = tmp_path / "more_english.txt"
    lm_text.write_text("THE CAT SAT ON THE MAT\nA DOG RAN HOME\n")
    res = run_recipe(tts_root, tmp_path, "--train_config", "conf/train_tiny_ctc.yaml", "--lm_order", "3",
                     "--lm_beam", "3", "--lm_text", str(lm_text))
    assert res.returncode == 0, res.stderr[-4000:]
    exp = tmp_path / "exp" / "train_tiny_ctc"
    # a CTC arch is decoded greedily, by prefix beam search (--beam 2) and by prefix beam search with
    # an n-gram LM (training transcripts + --lm_text; --lm_beam 3), one table row each
    assert (tmp_path / "dump" / "lm" / "ngram3.lm.gz").is_file()
    assert "LM " in (exp / "decode_checkpoint_avg_ctc_beam3_lm3" / "decode-dev-tts.log").read_text()
    for method in ("ctc_greedy", "ctc_beam2", "ctc_beam3_lm3"):
        [row] = results(exp / f"decode_checkpoint_avg_{method}")
        assert row["utts"] == "8"
        assert f"decode_checkpoint_avg_{method}\tdev-tts\t8\t" in res.stdout
    assert "decoded 8 utterances (beam, beam 2)" in (exp / "decode_checkpoint_avg_ctc_beam2" / "decode-dev-tts.log").read_text()


@pytest.mark.skipif(not shutil.which("curl"), reason="the file:// mirror needs curl")
def test_librispeech_stage1_downloads_unpacks_and_resumes(tmp_path):
    """egs/librispeech_100 stage 1 against a local mirror of fake OpenSLR tarballs."""
    from _asr_corpus import write_chapter
    mirror = tmp_path / "mirror"
    subsets = ["train-clean-100", "dev-clean", "dev-other", "test-clean", "test-other"]
    for s in subsets:
        write_chapter(mirror / "LibriSpeech" / s, "84", "121123", {"0000": "HELLO"})
        subprocess.run(["tar", "-czf", str(mirror / f"{s}.tar.gz"), "-C", str(mirror), f"LibriSpeech/{s}"], check=True)
    env = dict(os.environ, LIBRISPEECH=str(tmp_path / "db"), LIBRISPEECH_URL=f"file://{mirror}")
    cmd = ["bash", str(ROOT / "egs" / "librispeech_100" / "asr1" / "run.sh"), "--python", sys.executable,
           "--stop_stage", "1", "--use_gpu", "false"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    for s in subsets:
        assert (tmp_path / "db" / s / "84" / "121123" / "84-121123-0000.flac").is_file()
        assert (tmp_path / "db" / s / ".complete").is_file() and not (tmp_path / "db" / f"{s}.tar.gz").exists()
    again = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert again.returncode == 0 and again.stderr.count("already in") == len(subsets)


def test_unset_corpus_location_is_named_in_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TTS_ROOT"}
    res = subprocess.run(["bash", str(RUN), "--python", sys.executable, "--stop_stage", "1"],
                         capture_output=True, text=True, env=env)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "TTS_ROOT is not set: set TTS_ROOT=" in res.stderr


def test_corpus_root_option_replaces_tts_root(tts_root, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TTS_ROOT"}
    res = subprocess.run(["bash", str(RUN), "--python", sys.executable, "--stop_stage", "1",
                          "--corpus_root", str(tts_root)], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert f"==== stage 1: data ({tts_root}: train-tts dev-tts" in res.stderr


@pytest.mark.parametrize("value, message", [
    ("dev-tts,test-tts", "'dev-tts,test-tts' is not a subset folder name"),
    ("dev-tts dev-tts", "--test_subsets: 'dev-tts' is given twice"),
    ("test-tts", "--test_subsets: 'test-tts' has no features (DUMP/test-tts.tsv): run stage 2 with it in --test_subsets"),
])
def test_test_subsets_are_checked(tts_root, tmp_path, value, message):
    (tmp_path / "exp" / "train_tiny").mkdir(parents=True)
    for name in ("checkpoint_avg.pt", ".train_done"):
        (tmp_path / "exp" / "train_tiny" / name).write_text("x")
    res = run_recipe(tts_root, tmp_path, "--stage", "6", "--stop_stage", "6", "--test_subsets", value)
    message = message.replace("DUMP", str(tmp_path / "dump"))
    assert res.returncode != 0 and message in res.stderr and "Traceback" not in res.stderr, res.stderr[-2000:]
