"""egs/doc_en/lm1 (recipes/lm.sh) end to end at toy size on generated text: perplexities of valid,
test and an extra text file, resume, markers keyed on options, and one-line errors."""
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EGS = ROOT / "egs" / "doc_en" / "lm1"
WIKI = ROOT / "egs" / "wikitext103" / "lm1"

SUBJECTS = ["the cat", "a dog", "the manual", "this package", "the user", "a program", "the server", "the system",
            "every window", "the archive tool", "a careful reader", "the network daemon"]
VERBS = ["reads", "writes", "opens", "closes", "prints", "installs", "configures", "removes", "explains", "updates"]
OBJECTS = ["the file", "a line", "the page", "the window", "its settings", "the archive", "a message",
           "the document", "every chapter", "the backup copy", "a short summary"]
ADVERBS = ["quickly", "slowly", "again", "today", "carefully", "at once", "without asking", "twice"]


def paragraph(rng):
    def sentence():
        s = f"{rng.choice(SUBJECTS).capitalize()} {rng.choice(VERBS)} {rng.choice(OBJECTS)}"
        return s + (" " + rng.choice(ADVERBS) if rng.random() < 0.5 else "") + "."
    return " ".join(sentence() for _ in range(rng.randint(1, 3)))


def write_text(folder: Path, sizes, seed=0):
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in sizes.items():
        (folder / f"{split}.txt").write_text("".join(paragraph(rng) + "\n" for _ in range(n)), encoding="utf-8")
    return folder


def run_recipe(work, *args, check=True, egs=EGS, env_extra=None):
    env = dict(os.environ, PYTHON=sys.executable, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
               **(env_extra or {}))
    env.pop("DOC_EN_DATA", None)
    res = subprocess.run(["./run.sh", "--datadir", str(work / "data"), "--expdir", str(work / "exp"), *args],
                         cwd=egs, env=env, capture_output=True, text=True)
    if check and res.returncode != 0:
        raise AssertionError(f"run.sh failed ({res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-5000:]}")
    return res


def one_line_error(res, message):
    assert res.returncode != 0, res.stderr[-2000:]
    assert "Traceback" not in res.stderr and message in res.stderr, res.stderr[-2000:]
    # one line besides the stage headers
    assert len([l for l in res.stderr.strip().splitlines() if "==== stage" not in l]) == 1, res.stderr[-2000:]


TINY = ["--train_config", "conf/train_tiny.yaml", "--vocab_size", "80", "--n_average", "2"]


@pytest.fixture(scope="module")
def text(tmp_path_factory):
    return write_text(tmp_path_factory.mktemp("text"), {"train": 400, "valid": 30, "test": 30})


@pytest.fixture(scope="module")
def done(text, tmp_path_factory):
    """One finished tiny run (stages 1-7) with an extra text file scored."""
    work = tmp_path_factory.mktemp("work")
    extra = write_text(tmp_path_factory.mktemp("extra"), {"my notes": 12}, seed=7) / "my notes.txt"
    res = run_recipe(work, "--text_dir", str(text), *TINY, "--eval_text", str(extra))
    return work, extra, res


def test_all_stages_write_perplexities_checkpoints_and_plots(done):
    work, extra, res = done
    for n, name in enumerate(["data", "vocab", "binarize", "train", "average", "eval", "plot"], 1):
        assert f"==== stage {n}: {name}" in res.stderr
    exp = work / "exp" / "train_tiny"
    assert (exp / "checkpoint_avg.pt").stat().st_size > 0
    assert (work / "data" / "spm" / "spm.model").is_file() and (work / "data" / "bin" / "dict.txt").is_file()
    lines = (exp / "results.txt").read_text().splitlines()
    assert [l.split(":")[0] for l in lines] == ["train_tiny/valid", "train_tiny/test", "train_tiny/my notes.txt"]
    for line in lines:
        assert line in res.stdout  # printed as well
    for d, text_file in (("eval_valid", work / "data" / "raw" / "valid.txt"), ("eval_test", work / "data" / "raw" / "test.txt"),
                         ("eval_text_my_notes.txt", extra)):
        r = json.loads((exp / d / "results.json").read_text())
        assert 1 < r["ppl_per_token"] < 1000 and r["ppl_per_word"] > r["ppl_per_token"]
        assert r["text"] == str(text_file) and r["checkpoint"].endswith("checkpoint_avg.pt")
        # every token of the text is scored: its pieces plus one end of line a line
        assert r["lines"] == len(text_file.read_text().splitlines())
        assert r["tokens"] > r["words"] + r["lines"]
    r = json.loads((exp / "eval_text_my_notes.txt" / "results.json").read_text())
    assert r["lines"] == 12 and f"{r['ppl_per_token']:.2f} per token ({r['tokens']:,} tokens)" in lines[2]
    assert "ent_dec_self_min" in (exp / "train.log").read_text()
    for png in ("loss", "entropy", "sigma_gamma"):
        assert (exp / "plots" / f"{png}.png").stat().st_size > 0


def test_a_rerun_skips_every_done_stage_and_other_eval_options_score_again(done, text):
    work, extra, _ = done
    res = run_recipe(work, "--text_dir", str(text), *TINY, "--eval_text", str(extra), "--stop_stage", "6")
    for message in ("data/raw is complete and holds the same text; skipping", "data/spm is complete; skipping",
                    "data/bin is complete; skipping", "training finished earlier; skipping",
                    "checkpoint_avg.pt is up to date; skipping", "eval_valid is up to date; skipping",
                    "eval_text_my_notes.txt is up to date; skipping"):
        assert message in res.stderr
    assert "fairseq-train" not in res.stderr and "redoing" not in res.stderr
    assert "train_tiny/my notes.txt: perplexity" in res.stdout
    # other evaluation options: scored again; results.txt lists only what the current options scored
    exp = work / "exp" / "train_tiny"
    res = run_recipe(work, *TINY, "--stage", "6", "--stop_stage", "6", "--eval_sets", "valid",
                     "--eval_context_window", "8")
    assert "eval_valid/.done was made with other options; redoing" in res.stderr
    assert "context_window=8" in (exp / "eval_valid" / ".done").read_text()
    assert [l.split(":")[0] for l in (exp / "results.txt").read_text().splitlines()] == ["train_tiny/valid"]


def test_changed_options_redo_the_data_stages(text, tmp_path):
    run_recipe(tmp_path, "--text_dir", str(text), *TINY, "--stop_stage", "3")
    res = run_recipe(tmp_path, "--text_dir", str(text), *TINY[:2], "--vocab_size", "70", "--stop_stage", "3")
    assert "data/raw is complete" in res.stderr
    assert "spm/.done was made with other options; redoing" in res.stderr
    assert "bin/.done was made with other options; redoing" in res.stderr  # downstream of the vocabulary
    assert len((tmp_path / "data" / "spm" / "spm.vocab").read_text().splitlines()) == 70
    # other text in the same folder: stage 1 copies it again and the later stages follow
    changed = write_text(tmp_path / "changed", {"train": 400, "valid": 30, "test": 30}, seed=3)
    res = run_recipe(tmp_path, "--text_dir", str(changed), *TINY[:2], "--vocab_size", "70", "--stop_stage", "3")
    assert "raw/.done was made with other options; redoing" in res.stderr
    assert "spm/.done was made with other options; redoing" in res.stderr


@pytest.mark.slow
def test_a_larger_budget_continues_and_other_flags_or_data_are_refused(text, tmp_path):
    short = [*TINY, "--n_average", "1", "--train_args", "--max-update 2 --save-interval-updates 2"]
    run_recipe(tmp_path, "--text_dir", str(text), *short, "--stop_stage", "5")
    res = run_recipe(tmp_path, *short[:-1], "--max-update 4 --save-interval-updates 2", "--stage", "4",
                     "--stop_stage", "5")
    assert "a larger budget (max-update=2 max-epoch=0 stop-time-hours=0 -> max-update=4" in res.stderr
    assert ".average_done was made with other options; redoing" in res.stderr
    res = run_recipe(tmp_path, *short[:-1], "--max-update 4 --lr 0.01", "--stage", "4", "--stop_stage", "4",
                     check=False)
    assert res.returncode != 0 and "was trained with other data or options" in res.stderr
    assert "train under another --tag" in res.stderr and "Traceback" not in res.stderr
    # the data stages redone under the model: evaluation refuses the old model
    changed = write_text(tmp_path / "changed", {"train": 400, "valid": 30, "test": 30}, seed=3)
    run_recipe(tmp_path, "--text_dir", str(changed), *TINY, "--stop_stage", "3")
    res = run_recipe(tmp_path, *short, "--stage", "6", check=False)
    assert res.returncode != 0 and "was trained on other data than" in res.stderr


def test_missing_files_and_bad_options_are_one_line_errors(text, tmp_path):
    one_line_error(run_recipe(tmp_path, "--stop_stage", "1", check=False), "DOC_EN_DATA is not set")
    one_line_error(run_recipe(tmp_path, "--text_dir", str(tmp_path / "nowhere"), check=False),
                   f"--text_dir {tmp_path / 'nowhere'}: not a folder")
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "train.txt").write_text("some words here\n")
    one_line_error(run_recipe(tmp_path, "--text_dir", str(partial), check=False), "valid.txt is missing or empty")
    one_line_error(run_recipe(tmp_path, "--eval_text", str(tmp_path / "no.txt"), "--stage", "6", check=False),
                   f"--eval_text {tmp_path / 'no.txt'}: file not found")
    one_line_error(run_recipe(tmp_path, "--eval_sets", "dev", "--stage", "6", check=False),
                   "--eval_sets: 'dev' is not one of: valid test")
    one_line_error(run_recipe(tmp_path, "--vocab_type", "words", check=False), "--vocab_type must be unigram, bpe")
    one_line_error(run_recipe(tmp_path, "--stage", "9", check=False), "unknown stage 9: the stages are 1-7")
    res = run_recipe(tmp_path, "--no_such_option", "1", check=False)
    assert res.returncode != 0 and "unknown option --no_such_option" in res.stderr
    one_line_error(run_recipe(tmp_path, *TINY, "--stage", "6", check=False), "training has not finished")
    # text that is not UTF-8 is named with its file and line, and nothing is marked complete
    latin = tmp_path / "latin"
    write_text(latin, {"train": 20, "valid": 5, "test": 5})
    (latin / "valid.txt").write_bytes("Größe ändern\n".encode("latin-1"))
    res = run_recipe(tmp_path, "--text_dir", str(latin), "--stop_stage", "1", check=False)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert "raw.tmp/valid.txt:1: not valid UTF-8" in res.stderr
    assert not (tmp_path / "data" / "raw" / ".done").exists()


def test_a_python_without_fairseq_is_named_in_one_line(text, tmp_path):
    python = tmp_path / "python"  # an interpreter that sees no site-packages, as a system Python without fairseq
    python.write_text(f"#!/bin/sh\nexec {sys.executable} -I -S \"$@\"\n")
    python.chmod(0o755)
    res = run_recipe(tmp_path, "--text_dir", str(text), "--python", str(python), check=False)
    one_line_error(res, f"--python '{python}' cannot import torch, fairseq")
    assert ".venv/bin/activate" in res.stderr and "PYTHON=" in res.stderr


def test_wikitext103_layout_is_read_as_words(text, tmp_path):
    """egs/wikitext103/lm1 stage 1-3 on a toy folder in WikiText-103's layout: no SentencePiece,
    the words are the tokens."""
    wiki = tmp_path / "wikitext-103"
    wiki.mkdir()
    for split in ("train", "valid", "test"):
        body = (text / f"{split}.txt").read_text().replace(".", " .")
        (wiki / f"wiki.{split}.tokens").write_text(" = Title = \n\n" + body)
    res = run_recipe(tmp_path, "--stop_stage", "3", egs=WIKI, env_extra={"WIKITEXT103": str(wiki)})
    assert "--vocab_type none: the text is used as it is" in res.stderr
    assert not (tmp_path / "data" / "spm" / "spm.model").exists()
    dictionary = (tmp_path / "data" / "bin" / "dict.txt").read_text().split()[::2]
    assert "settings" in dictionary and "Title" in dictionary
    res = run_recipe(tmp_path, "--stop_stage", "1", egs=WIKI, check=False)
    one_line_error(res, "WIKITEXT103 is not set")


def test_shipped_lm_configs_parse(tmp_path):
    from sigma_plugin.recipe.conf import check_flags, load_conf, to_flags
    confs = sorted(EGS.glob("conf/*.yaml")) + sorted(WIKI.glob("conf/*.yaml"))
    assert len(confs) == 7
    for path in confs:
        conf = load_conf(path)
        check_flags(to_flags(conf, str(path)), str(tmp_path), str(path))  # raises StepError naming the file
        assert conf["task"] == "language_modeling" and conf["arch"].startswith("sigma_transformer_lm")
    stock = load_conf(EGS / "conf" / "train_stock_adam_warmup.yaml")
    assert stock["sigma-reparam"] == "none" and stock["sigma-layernorm"] == "stock" and stock["warmup-updates"] > 0
    default = load_conf(EGS / "conf" / "train_sigma_postln_adam.yaml")
    assert default["sigma-layernorm"] == "post" and "warmup-updates" not in default


def test_perplexity_per_word_is_the_same_likelihood_over_words_and_line_ends(tmp_path):
    from sigma_plugin.recipe.lm import score
    log = tmp_path / "eval.log"
    log.write_text("INFO:fairseq_cli.eval_lm:Evaluated 8 tokens in 0.1s (80.00 tokens/s)\n"
                   "INFO:fairseq_cli.eval_lm:Loss (base 2): 2.0000, Perplexity: 4.00\n")
    text = tmp_path / "t.txt"
    text.write_text("three short words\n")
    line = score(log, text, "x/t.txt", tmp_path / "r.json")
    r = json.loads((tmp_path / "r.json").read_text())
    # 8 tokens at 2 bits each = 16 bits over 3 words + 1 line end: 2 ** (16 / 4) = 16
    assert r["ppl_per_token"] == 4.0 and r["ppl_per_word"] == 16.0 and r["tokens"] == 8
    assert line == "x/t.txt: perplexity 4.00 per token (8 tokens), 16.00 per word (3 words + 1 line ends)"
    log.write_text("INFO:fairseq_cli.eval_lm:loading model(s)\n")
    from sigma_plugin.util import StepError
    with pytest.raises(StepError, match="fairseq-eval-lm did not finish"):
        score(log, text, "x", tmp_path / "r2.json")


def test_wikitext103_readme_says_it_has_not_been_run_here():
    assert "has not been run here" in " ".join((WIKI / "README.md").read_text().split())


def test_debian_build_passes_the_package_list_and_keeps_each_choice_apart(tmp_path):
    """local/data.sh with DOC_EN_DATA=debian: DOC_EN_PACKAGES and DOC_EN_MAX_DOCS reach the builder,
    each choice of documents gets its own output folder (no rebuild over another choice)."""
    calls = tmp_path / "calls.txt"
    fake = tmp_path / "fake_python"
    fake.write_text(f"""#!/usr/bin/env bash
echo "$*" >> {calls}
out=""; while [ $# -gt 0 ]; do [ "$1" = --out ] && out=$2; shift; done
mkdir -p "$out"; for s in train valid test; do echo "Some prose for $s." > "$out/$s.txt"; done
""")
    fake.chmod(0o755)

    def data(packages, dest):
        dest.mkdir()
        env = dict(os.environ, PYTHON=str(fake), DOC_EN_DATA="debian", DOC_EN_WORKDIR=str(tmp_path / "w"),
                   DOC_EN_PACKAGES=packages, DOC_EN_MAX_DOCS="")
        subprocess.run([str(EGS / "local" / "data.sh"), str(dest)], env=env, check=True, capture_output=True)
        assert (dest / "train.txt").read_text() == "Some prose for train.\n"

    data("", tmp_path / "a")
    data("git-doc,maint-guide", tmp_path / "b")
    first, second = calls.read_text().splitlines()
    assert "--packages" not in first and first.endswith(f"--out {tmp_path}/w/corpus")
    assert "--packages git-doc,maint-guide" in second and f"--out {tmp_path}/w/corpus_packages" in second
