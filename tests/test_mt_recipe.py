"""egs/l10n_en_de/mt1 end to end at toy size, resume, and the recipe's input checks."""
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from _toy_mt import LEXICON, write_parallel_text

ROOT = Path(__file__).resolve().parents[1]
EGS = ROOT / "egs" / "l10n_en_de" / "mt1"


def run_recipe(corpus, work, *args, check=True):
    env = dict(os.environ, L10N_DATA=str(corpus), PYTHON=sys.executable,
               PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    res = subprocess.run(["./run.sh", "--datadir", str(work / "data"), "--expdir", str(work / "exp"), *args],
                         cwd=EGS, env=env, capture_output=True, text=True)
    if check and res.returncode != 0:
        raise AssertionError(f"run.sh failed ({res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-5000:]}")
    return res


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A generated prepared folder: train and valid only (the data script carves valid into valid + test)."""
    folder = write_parallel_text(tmp_path_factory.mktemp("l10n"), {"train": 400, "valid": 40})
    # lines fairseq must never see whole: a 20,000-character single "word" in train (the word-count
    # filter keeps it) and a line of some 2,000 words in valid (valid is not filtered)
    long_word = "".join(random.Random(0).choice("abcdefghij") for _ in range(20000))
    for lang, side in (("en", 0), ("de", 1)):
        with open(folder / f"train.{lang}", "a", encoding="utf-8") as f:
            f.write(long_word + "\n")
        lines = (folder / f"valid.{lang}").read_text(encoding="utf-8").splitlines()
        lines[4] = " ".join(pair[side] for pair in LEXICON * 30)
        (folder / f"valid.{lang}").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


TINY = ["--train_config", "conf/train_tiny.yaml", "--vocab_size", "150", "--n_average", "2", "--beam", "2",
        "--decode_args", "--max-len-b 20", "--train_args", "--max-update 4 --save-interval-updates 2"]


def test_tiny_recipe_end_to_end_and_resume(corpus, tmp_path):
    first = run_recipe(corpus, tmp_path, *TINY, "--stop_stage", "4")
    assert "==== stage 4: binarize" in first.stderr and "stage 5" not in first.stderr
    assert (tmp_path / "data" / "bin" / ".done").exists()
    res = run_recipe(corpus, tmp_path, *TINY)
    for stage in ("data/raw", "data/clean", "data/spm", "data/bin"):  # resumed, not redone
        assert f"{stage.split('/')[1]} is complete" in res.stderr or f"{stage} is complete" in res.stderr
    exp = tmp_path / "exp" / "train_tiny"
    for split in ("valid", "test"):
        result = json.loads((exp / f"decode_{split}" / "results.json").read_text())
        assert result["sentences"] == 20 and 0 <= result["bleu"] <= 100
        assert result["bleu_signature"].startswith("nrefs:1") and "chrF" not in result["bleu_signature"]
        assert f"train_tiny/{split}: BLEU" in res.stdout and f"train_tiny/{split}: chrF" in res.stdout
        assert len((exp / f"decode_{split}" / "hyp.txt").read_text().splitlines()) == 20
    assert "spm train: 401 -> 400 lines" in first.stdout and "dropped 1 pair(s) longer than 250 pieces" in first.stdout
    assert "spm valid: 20 -> 20 lines" in first.stdout and "cut 1 line(s) to 250 pieces" in first.stdout
    assert max(len(l.split()) for l in (tmp_path / "data" / "spm" / "valid.de").read_text().splitlines()) == 250
    result = json.loads((exp / "decode_test" / "results.json").read_text())
    assert result["ref"] == str(tmp_path / "data" / "raw" / "test.de") and result["ref_lines_total"] == 20
    assert (exp / "checkpoint_avg.pt").stat().st_size > 0
    assert "ent_enc_self_mean" in (exp / "train.log").read_text()
    assert (exp / "plots" / "entropy.png").stat().st_size > 0
    again = run_recipe(corpus, tmp_path, *TINY, "--stage", "5", "--stop_stage", "7")
    assert "training finished earlier; skipping" in again.stderr and "is up to date; skipping" in again.stderr
    other = [a if a != "--max-update 4 --save-interval-updates 2" else "--max-update 6" for a in TINY]
    res = run_recipe(corpus, tmp_path, *other, "--stage", "5", "--stop_stage", "5", check=False)
    assert res.returncode != 0 and "was trained with other data or options" in res.stderr
    assert "train under another --tag" in res.stderr and "Traceback" not in res.stderr


def test_larger_budget_continues_and_redone_data_is_never_decoded_or_scored_with_old_output(corpus, tmp_path):
    first = run_recipe(corpus, tmp_path, *TINY)
    exp = tmp_path / "exp" / "train_tiny"
    assert "scored" not in first.stderr and (exp / "decode_test" / "results.json").is_file()
    # a larger --max-update continues the finished run in place; averaging and decoding follow it
    longer = [a if a != "--max-update 4 --save-interval-updates 2" else "--max-update 6 --save-interval-updates 2"
              for a in TINY]
    res = run_recipe(corpus, tmp_path, *longer, "--stage", "5")
    assert "a larger budget (max-update=4 max-epoch=0 stop-time-hours=0 -> max-update=6" in res.stderr
    assert "continuing from" in res.stderr and "Traceback" not in res.stderr
    assert torch_updates(exp / "checkpoint_last.pt") == 6
    assert ".average_done was made with other options; redoing" in res.stderr
    assert "decode_test/.done was made with other options; redoing" in res.stderr
    res = run_recipe(corpus, tmp_path, *TINY, "--stage", "5", "--stop_stage", "5", check=False)
    assert res.returncode != 0 and "max-update=4 max-epoch=0 stop-time-hours=0 is smaller" in res.stderr
    # other decoding options: decoded again
    res = run_recipe(corpus, tmp_path, *longer, "--stage", "7", "--beam", "3")
    assert "decode_valid/.done was made with other options; redoing" in res.stderr
    # stages 1-4 redone on another corpus under the same options: the old model's output is not reused
    other = write_parallel_text(tmp_path / "other_corpus", {"train": 400, "valid": 40}, seed=1)
    shutil.rmtree(tmp_path / "data")
    run_recipe(other, tmp_path, *longer, "--stop_stage", "4")
    res = run_recipe(other, tmp_path, *longer, "--stage", "8", "--beam", "3", check=False)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert "decode_valid/hyp.txt was decoded from another data set, checkpoint or decoding options" in res.stderr
    assert "rerun stage 7" in res.stderr
    res = run_recipe(other, tmp_path, *longer, "--stage", "7", "--beam", "3", check=False)
    assert res.returncode != 0 and "was trained on other data than" in res.stderr
    assert "(stages 1-4 were redone)" in res.stderr


def test_entropy_alarm_snapshot_goes_to_the_experiment(corpus, tmp_path):
    res = run_recipe(corpus, tmp_path, *TINY[:4], "--train_args",
                     "--max-update 2 --sigma-entropy-alarm 100 --sigma-entropy-alarm-stop", "--stop_stage", "5",
                     check=False)
    assert res.returncode != 0 and "Training stopped by --sigma-entropy-alarm-stop" in res.stdout + res.stderr
    exp = tmp_path / "exp" / "train_tiny"
    assert (exp / "entropy_alarm_u0.pt").is_file() and not list(EGS.glob("entropy_alarm_u*.pt"))
    assert f"--sigma-entropy-alarm-dir {exp}" in res.stderr


def torch_updates(path):
    import torch
    return torch.load(path, map_location="cpu", weights_only=False)["optimizer_history"][-1]["num_updates"]


def test_test_sets_are_checked(corpus, tmp_path):
    for value, message in (("dev", "--test_sets: 'dev' is not one of: valid test"),
                           ("valid,test", "--test_sets: 'valid,test' is not one of: valid test"),
                           ("test test", "--test_sets: 'test' is given twice"), ("", "--test_sets is empty")):
        res = run_recipe(corpus, tmp_path, "--test_sets", value, "--stage", "8", check=False)
        assert res.returncode != 0 and message in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_a_python_without_fairseq_is_named_in_one_line(corpus, tmp_path):
    python = tmp_path / "python"  # an interpreter that sees no site-packages, as a system Python without fairseq
    python.write_text(f"#!/bin/sh\nexec {sys.executable} -I -S \"$@\"\n")
    python.chmod(0o755)
    res = run_recipe(corpus, tmp_path, "--python", str(python), check=False)
    assert res.returncode != 0 and "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert f"--python '{python}' cannot import torch, fairseq" in res.stderr
    assert ".venv/bin/activate" in res.stderr and "PYTHON=" in res.stderr


def test_changed_options_redo_the_stages(corpus, tmp_path):
    run_recipe(corpus, tmp_path, "--vocab_size", "150", "--stop_stage", "3")
    res = run_recipe(corpus, tmp_path, "--vocab_size", "120", "--stop_stage", "3")
    assert "data/raw is complete" in res.stderr and "data/clean is complete" in res.stderr
    assert "spm/.done was made with other options; redoing" in res.stderr
    assert len((tmp_path / "data" / "spm" / "spm.vocab").read_text().splitlines()) == 120
    res = run_recipe(corpus, tmp_path, "--vocab_size", "120", "--max_len", "4", "--stop_stage", "3")
    assert "clean/.done was made with other options; redoing" in res.stderr
    assert "spm/.done was made with other options; redoing" in res.stderr  # downstream of clean
    assert max(len(l.split()) for l in (tmp_path / "data" / "clean" / "train.en").read_text().splitlines()) == 4
    res = run_recipe(corpus, tmp_path, "--vocab_size", "120", "--max_len", "4", "--filter_splits", "train,test",
                     "--stop_stage", "2")
    assert "clean/.done was made with other options; redoing" in res.stderr
    assert len((tmp_path / "data" / "clean" / "test.en").read_text().splitlines()) < 20


def test_training_without_a_checkpoint_is_not_marked_done(corpus, tmp_path):
    res = run_recipe(corpus, tmp_path, *TINY[:4], "--train_args", "--max-update 2 --no-save", "--stop_stage", "5",
                     check=False)
    assert res.returncode != 0 and "training wrote no checkpoint" in res.stderr
    assert not (tmp_path / "exp" / "train_tiny" / ".train_done").exists()


def bad_corpus(tmp_path, corpus, mutate):
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in corpus.iterdir():
        (bad / f.name).write_text(f.read_text())
    mutate(bad)
    return bad


def test_line_count_mismatch_names_the_files(corpus, tmp_path):
    bad = bad_corpus(tmp_path, corpus, lambda d: (d / "train.de").write_text("eins\nzwei\n"))
    res = run_recipe(bad, tmp_path, "--stop_stage", "2", check=False)
    assert res.returncode != 0
    assert "line counts differ" in res.stderr and "train.de has 2" in res.stderr
    assert not (tmp_path / "data" / "clean").exists()  # nothing half-written taken as done
    assert not (tmp_path / "data" / "raw" / ".done").exists()  # checked before it is marked complete
    res = run_recipe(corpus, tmp_path, "--stop_stage", "2")  # the fixed corpus is read again
    assert "clean train: 401 -> " in res.stdout


def test_non_utf8_corpus_is_named_with_file_and_line(corpus, tmp_path):
    def latin1(d):
        lines = [line.encode("utf-8") for line in (d / "train.de").read_text(encoding="utf-8").splitlines()]
        lines[2] = "Größe ändern".encode("latin-1")  # one Latin-1 line in a UTF-8 file
        (d / "train.de").write_bytes(b"\n".join(lines) + b"\n")
    bad = bad_corpus(tmp_path, corpus, latin1)
    res = run_recipe(bad, tmp_path, "--stop_stage", "2", check=False)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert "raw.tmp/train.de:3: not valid UTF-8" in res.stderr, res.stderr[-2000:]
    assert not (tmp_path / "data" / "raw" / ".done").exists()


def test_empty_corpus_and_missing_files(corpus, tmp_path):
    bad = bad_corpus(tmp_path, corpus, lambda d: ((d / "train.en").write_text(""), (d / "train.de").write_text("")))
    res = run_recipe(bad, tmp_path, "--stop_stage", "2", check=False)
    assert res.returncode != 0 and "train.en is missing or empty" in res.stderr
    assert not (tmp_path / "data" / "raw" / ".done").exists()


def test_unknown_stage_and_option(corpus, tmp_path):
    res = run_recipe(corpus, tmp_path, "--stage", "12", check=False)
    assert res.returncode != 0 and "unknown stage 12" in res.stderr
    res = run_recipe(corpus, tmp_path, "--no_such_option", "1", check=False)
    assert res.returncode != 0 and "unknown option --no_such_option" in res.stderr


def test_unknown_yaml_key_is_named(tmp_path):
    conf = tmp_path / "bad.yaml"
    conf.write_text((EGS / "conf" / "train_tiny.yaml").read_text() + "sigma-reparm: all\n")
    res = subprocess.run([sys.executable, "-m", "sigma_plugin.recipe.conf", str(conf), "--check", str(tmp_path)],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 2 and "unknown key(s)" in res.stderr and "sigma-reparm" in res.stderr
    conf.write_text("save-dir: /tmp/x\n")
    res = subprocess.run([sys.executable, "-m", "sigma_plugin.recipe.conf", str(conf)],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 2 and "'save-dir' is set by the recipe" in res.stderr


def test_shipped_mt_configs_parse(tmp_path):
    from sigma_plugin.recipe.conf import check_flags, load_conf, to_flags
    confs = sorted((ROOT / "egs").glob("*/mt1/conf/**/*.yaml"))  # conf/depth/, conf/optimizer/ too
    assert len(confs) >= 3
    for path in confs:
        flags = to_flags(load_conf(path), str(path))
        check_flags(flags, str(tmp_path), str(path))  # raises StepError naming the file
        assert "--arch" in flags


def test_unset_corpus_location_is_named_in_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "L10N_DATA"}
    res = subprocess.run([str(EGS / "local" / "data.sh"), str(tmp_path), "en", "de"], capture_output=True, text=True,
                         env=env)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "L10N_DATA is not set" in res.stderr and "L10N_DATA=debian" in res.stderr
    res = subprocess.run([str(EGS / "local" / "data.sh"), str(tmp_path), "en", "de"], capture_output=True, text=True,
                         env=dict(env, L10N_DATA=str(tmp_path / "nowhere")))
    assert res.returncode == 2 and "is not a folder" in res.stderr
