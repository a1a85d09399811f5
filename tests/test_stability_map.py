"""bench/stability_map.py: how a cell is judged, and a 2-update tiny grid end to end (resumable)."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from _toy_mt import ROOT, binarize, write_toy_corpus

sys.path.insert(0, str(ROOT / "bench"))
from stability_cells import Cell, analyse, largest_spike, optimizer_flags, unigram_entropy_bits  # noqa: E402

CELL = Cell(6, "postln", "adam1e-3", 1)


def log_of(points, extra=""):
    lines = [f"2026-01-01 | INFO | train_inner | " + json.dumps({"num_updates": str(u), "loss": str(l),
                                                                 "nll_loss": str(n), **e})
             for u, l, n, e in points]
    return "\n".join(lines) + "\n" + extra


def test_cell_that_learns_left_the_plateau():
    text = log_of([(25, 10.0, 9.8, {"ent_enc_self_min": "2.0"}), (50, 8.0, 7.5, {"ent_enc_self_min": "0.7",
                                                                              "ent_dec_cross_min": "1.5"})])
    r = analyse(CELL, text, 0, 12.0, unigram_bits=9.0)
    assert r.status == "ok" and r.left_plateau and r.final_loss == 8.0 and r.best_loss == 8.0
    assert (r.min_entropy, r.min_entropy_at, r.min_entropy_where) == (0.7, 50, "enc_self")


def test_cell_on_the_plateau_is_not_counted_as_learning():
    r = analyse(CELL, log_of([(25, 9.9, 9.6, {}), (50, 9.7, 8.8, {})]), 0, 1.0, unigram_bits=9.0)
    assert r.status == "ok" and not r.left_plateau  # 8.8 > 9.0 − 0.5


def test_divergence_by_nan_by_crash_and_by_rising_loss():
    assert analyse(CELL, log_of([(25, 9.0, 8.0, {}), (50, "nan", "nan", {})]), 0, 1.0, 9.0).status == "diverged"
    crash = log_of([(25, 9.0, 8.0, {})], "FloatingPointError: gradients are Nan/Inf\n")
    assert analyse(CELL, crash, 1, 1.0, 9.0).status == "diverged"
    assert analyse(CELL, log_of([(25, 9.0, 8.0, {}), (50, 9.5, 8.9, {})]), 0, 1.0, 9.0).status == "diverged"
    assert analyse(CELL, "Traceback: something else\n", 1, 1.0, 9.0).status == "failed"


def test_a_falling_loss_above_a_uniform_guess_is_diverged():
    # exploded logits at the start: the loss falls, but stays far above log2 V
    exploded = log_of([(25, 17219.6, 17208.6, {}), (50, 12451.6, 12381.1, {})])
    assert analyse(CELL, exploded, 0, 1.0, 9.0).status == "ok"  # the rising-loss rule alone misses it
    assert analyse(CELL, exploded, 0, 1.0, 9.0, uniform_bits=11.0).status == "diverged"
    assert analyse(CELL, log_of([(25, 10.9, 10.8, {}), (50, 9.9, 9.6, {})]), 0, 1.0, 9.0,
                   uniform_bits=11.0).status == "ok"


def test_largest_spike_and_unigram_entropy():
    assert largest_spike([5, 4, 6, 3, 3.5]) == 2
    assert largest_spike([5, 4, 3]) == 0
    assert largest_spike([5, math.nan, 7]) == 2
    assert unigram_entropy_bits({1: 1, 2: 1, 3: 1, 4: 1}) == pytest.approx(2.0)


def test_optimizer_names():
    assert optimizer_flags("adam3e-4")[-2:] == ["--lr", "3e-4"]
    assert "lars" in optimizer_flags("lars1")
    for bad in ("rmsprop1", "adam", "adam-1", "adamx"):
        with pytest.raises(ValueError, match="optimizer"):
            optimizer_flags(bad)


def _map(data, out, *extra, models="postln,sigma_g=0.35sigma0"):
    return subprocess.run([sys.executable, str(ROOT / "bench" / "stability_map.py"), "--data", str(data),
                           "--out", str(out), "--depths", "1", "--models", models,
                           "--optimizers", "adam1e-2", "--seeds", "1", "--updates", "2", "--dim", "16",
                           "--max-tokens", "300", "--log-interval", "1", "--jobs", "2", *extra],
                          capture_output=True, text=True, timeout=300)


def test_tiny_grid_end_to_end_and_resume(tmp_path):
    write_toy_corpus(tmp_path / "toy")
    data = binarize(tmp_path / "toy")
    out = tmp_path / "map"
    res = _map(data, out)
    assert res.returncode == 0, res.stdout + res.stderr
    cells = sorted((out / "cells").glob("*.json"))
    assert [c.name for c in cells] == ["1L__postln__adam1e-2__s1.json", "1L__sigma_g=0.35sigma0__adam1e-2__s1.json"]
    saved = json.loads(cells[0].read_text())
    # two updates are too few to judge learning: only that the run was read in full
    assert saved["status"] in ("ok", "diverged") and saved["updates"] == 2 and saved["unigram_bits"] > 0
    assert len(saved["curve"]["loss"]) == 2 and saved["first_loss"] == saved["curve"]["loss"][0][1]
    assert "ent_enc_self_min" in saved["curve"]
    table = (out / "table.md").read_text()
    assert "### 1L-1L" in table and "| sigma_g=0.35sigma0 |" in table
    assert (out / "heatmap_1L.png").stat().st_size > 0 and (out / "curves_1L.png").stat().st_size > 0
    assert "2 to run" in res.stdout
    again = _map(data, out, "--reanalyse", "--plateau-margin", "100")
    assert again.returncode == 0 and "2 done, 0 to run" in again.stdout
    assert "plateau" in (out / "table.md").read_text()
    changed = _map(data, out, "--updates", "3", models="postln")  # other settings: saved cells do not count
    assert changed.returncode == 0 and "0 done, 1 to run" in changed.stdout


def test_bad_arguments_are_one_line_errors(tmp_path):
    res = _map(tmp_path / "missing", tmp_path / "out")
    assert res.returncode == 2 and res.stderr.strip().startswith("stability_map: error: --data")
    res = subprocess.run([sys.executable, str(ROOT / "bench" / "stability_map.py"), "--data", str(tmp_path),
                          "--models", "nope"], capture_output=True, text=True)
    assert res.returncode == 2 and "--models: unknown nope" in res.stderr and "Traceback" not in res.stderr


def test_a_cross_entropy_log_without_nll_is_judged_by_its_loss():
    # the LM's cross_entropy criterion logs no nll_loss: its loss is the NLL
    text = "\n".join(f"x | train_inner | " + json.dumps({"num_updates": str(u), "loss": str(l)})
                     for u, l in ((25, 10.0), (50, 8.0))) + "\n"
    r = analyse(CELL, text, 0, 1.0, unigram_bits=9.0)
    assert r.final_nll == 8.0 and r.left_plateau


def _lm_data(tmp_path):
    """A tiny --only-source binarized folder (language modelling), words as tokens."""
    from test_lm_recipe import write_text
    text = write_text(tmp_path / "text", {"train": 300, "valid": 20, "test": 20})
    out = tmp_path / "lm_bin"
    subprocess.run([str(Path(sys.executable).parent / "fairseq-preprocess"), "--only-source",
                    "--trainpref", str(text / "train.txt"), "--validpref", str(text / "valid.txt"),
                    "--destdir", str(out), "--workers", "1"], check=True, capture_output=True)
    return out


def test_language_modelling_grid_from_an_only_source_folder(tmp_path):
    data = _lm_data(tmp_path)
    out = tmp_path / "lm_map"
    res = _map(data, out, "--tokens-per-sample", "16", models="postln,preln,sigma_g=sigma0")
    assert res.returncode == 0, res.stdout + res.stderr
    saved = json.loads((out / "cells" / "1L__sigma_g=sigma0__adam1e-2__s1.json").read_text())
    assert saved["updates"] == 2 and saved["settings"]["tokens_per_sample"] == 16
    assert "ent_dec_self_min" in saved["curve"] and saved["final_nll"] == saved["final_loss"]
    table = (out / "table.md").read_text()
    assert "### 1L\n" in table and "language model, 16-token blocks" in table
    # every LM cell starts post-LN; the model's own switch (preln) wins
    pre = (out / "logs" / "1L__preln__adam1e-2__s1.log").read_text()
    post = (out / "logs" / "1L__postln__adam1e-2__s1.log").read_text()
    assert "'_name': 'sigma_transformer_lm'" in pre
    assert "sigma_layernorm': pre" in pre and "sigma_layernorm': post" in post
    # the report alone, from the saved cells
    (out / "table.md").unlink()
    again = _map(data, out, "--tokens-per-sample", "16", "--report-only", models="postln,preln,sigma_g=sigma0")
    assert again.returncode == 0 and "3 of 3 cells saved" in again.stdout and (out / "table.md").exists()
    res = _map(data, out, "--tokens-per-sample", "16", models="deepnorm")
    assert res.returncode == 2 and "deepnorm is defined for translation only" in res.stderr
    res = _map(data, tmp_path / "empty", "--report-only")
    assert res.returncode == 2 and "--report-only: no saved cell" in res.stderr
