"""egs/l10n_en_de/mt1 end to end at toy size, resume, and the recipe's input checks."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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
def corpus(tmp_path_factory, shared_dir):
    out = tmp_path_factory.mktemp("l10n")
    for split, n in (("train", 400), ("valid", 40)):
        for lang in ("en", "de"):
            lines = (shared_dir / "data" / "l10n_en_de" / f"{split}.{lang}").read_text(encoding="utf-8").splitlines()
            (out / f"{split}.{lang}").write_text("\n".join(lines[:n]) + "\n", encoding="utf-8")
    return out


TINY = ["--train_config", "conf/train_tiny.yaml", "--vocab_size", "300", "--n_average", "2", "--beam", "2",
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
    assert (exp / "checkpoint_avg.pt").stat().st_size > 0
    assert "ent_enc_self_mean" in (exp / "train.log").read_text()
    assert (exp / "plots" / "entropy.png").stat().st_size > 0
    again = run_recipe(corpus, tmp_path, *TINY, "--stage", "5", "--stop_stage", "7")
    assert "training finished earlier; skipping" in again.stderr and "is up to date; skipping" in again.stderr


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
        check_flags(flags, str(tmp_path), str(path))  # raises RecipeError naming the file
        assert "--arch" in flags
