"""sigma-plot: figures from recorded logs (tests/data) and from a fresh run's TensorBoard dir."""
import re

import pytest
from matplotlib.collections import QuadMesh

from _tiny_mt import DATA, doc_examples, tiny_run
from sigma_plugin.cli import figures
from sigma_plugin.cli.plot import FILENAMES, main
from sigma_plugin.util.run_logs import read_run

POSTLN, SIGMA = DATA / "postln.log", DATA / "sigma.log"


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    return tiny_run(tmp_path_factory)


@pytest.fixture(scope="module")
def runs():
    return [read_run(str(POSTLN), "post-LN"), read_run(str(SIGMA), "σReparam")]


def test_recorded_logs_parse(runs):
    post, sigma = runs
    updates, loss = sigma.series("loss")
    assert updates == sorted(updates) and len(updates) >= 3 and all(v > 0 for v in loss)
    assert sigma.has("loss", "valid")
    assert figures.kinds_logged(runs) == ["enc_self", "dec_self", "dec_cross"]
    assert not post.keys_matching(r"gamma_.*") and sigma.keys_matching(r"gamma_(enc|dec)_L\d+")


def test_loss_figure_has_train_and_valid_curve_per_run(runs):
    (ax,) = figures.loss_figure(runs).axes
    assert [line.get_label() for line in ax.lines] == [
        "post-LN train", "post-LN valid", "σReparam train", "σReparam valid"]


def test_entropy_figure_has_mean_and_min_per_run_and_kind(runs):
    fig = figures.entropy_figure(runs, figures.kinds_logged(runs))
    assert len(fig.axes) == 3
    for ax in fig.axes:
        assert len(ax.lines) == 2 * 2  # runs x (mean, min)
        x, _ = ax.lines[0].get_data()
        assert list(x) == runs[0].series("ent_enc_self_mean")[0]


def test_spectral_figure_has_a_curve_per_layer(runs):
    fig = figures.spectral_figure(runs)
    titles = [ax.get_title() for ax in fig.axes]
    assert len(fig.axes) == 3 and "γ" in titles[0] and "σ(W)" in titles[1]
    layers = len(runs[1].keys_matching(r"gamma_(enc|dec)_L\d+"))
    assert layers == 4  # tiny model: 2 encoder + 2 decoder layers; the post-LN run has no γ
    assert len(fig.axes[0].lines) == layers and len(fig.axes[1].lines) == layers
    assert len(fig.axes[2].lines) == 2 * 3  # σ_qk per run and attention kind


def test_heatmap_is_layer_by_update(runs):
    kinds = figures.kinds_logged(runs)
    fig = figures.heatmap_figure(runs, kinds)
    panels = [ax for ax in fig.axes if ax.get_title().startswith("(d)")]  # not the colorbar
    meshes = [c for ax in panels for c in ax.collections if isinstance(c, QuadMesh)]
    assert len(meshes) == len(runs) * len(kinds)
    layers, updates, matrix = figures.layer_matrix(runs[0], "enc_self")
    assert layers == [0, 1] and matrix.shape == (2, len(updates))
    assert meshes[0].get_array().shape == matrix.shape


def test_main_writes_pngs_atomically(tmp_path, capsys):
    assert main([str(POSTLN), str(SIGMA), "--labels", "post-LN,σReparam", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(tmp_path / FILENAMES[n]) for n in ("loss", "entropy", "sigma", "heatmap")]
    for path in printed:
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FILENAMES.values())  # no temp files left


def test_tensorboard_dir_matches_json_log(tiny, tmp_path, capsys):
    from_json, from_tb = read_run(str(tiny.log)), read_run(str(tiny.tensorboard))
    assert from_json.series("loss")[0] == from_tb.series("loss")[0]
    assert from_json.series("loss")[1] == pytest.approx(from_tb.series("loss")[1], abs=1e-3)
    assert from_json.series("ent_dec_cross_L1")[1] == pytest.approx(from_tb.series("ent_dec_cross_L1")[1], abs=1e-3)
    assert main([str(tiny.tensorboard), "--metrics", "loss,heatmap", "--out", str(tmp_path)]) == 0
    assert len(capsys.readouterr().out.split()) == 2


def test_doc_example_runs(tmp_path, capsys, monkeypatch):
    from _tiny_mt import ROOT
    (example,) = doc_examples("sigma-plot")
    monkeypatch.chdir(ROOT)
    out = example.index("--out") + 1
    example[out] = str(tmp_path / "figs")
    assert main(example) == 0
    assert len(capsys.readouterr().out.split()) == 4


def _error(capsys, argv):
    assert main(argv) == 2
    return capsys.readouterr().err


def test_missing_file(tmp_path, capsys):
    assert "no such file" in _error(capsys, [str(tmp_path / "nope.log"), "--out", str(tmp_path)])


def test_log_without_train_inner(tmp_path, capsys):
    log = tmp_path / "prep.log"
    log.write_text("2024-01-01 | INFO | fairseq_cli.preprocess | Wrote preprocessed data\n")
    assert "no '| train_inner | {...}' lines" in _error(capsys, [str(log), "--out", str(tmp_path)])


def test_log_without_entropy_says_how_to_train(tmp_path, capsys):
    log = tmp_path / "plain.log"
    log.write_text(re.sub(r'"(ent|entlb|sigmaqk|gamma|sigma)_[^"]*": "[^"]*", ', "", SIGMA.read_text()))
    # asked for: an error that says how to log it, nothing written
    err = _error(capsys, [str(log), "--metrics", "entropy", "--out", str(tmp_path / "o")])
    assert "no attention-entropy metrics" in err and "--sigma-log-interval" in err
    assert not (tmp_path / "o").exists()
    # by default (a stock model's log, e.g. in a recipe): the loss is drawn, the rest named as skipped
    assert main([str(log), "--out", str(tmp_path / "d")]) == 0
    err = capsys.readouterr().err
    assert "no attention-entropy metrics" in err and "--sigma-log-interval" in err
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["loss.png"]


def test_bad_labels_and_metrics(tmp_path, capsys):
    assert "--labels" in _error(capsys, [str(SIGMA), "--labels", "a,b", "--out", str(tmp_path)])
    assert "--metrics" in _error(capsys, [str(SIGMA), "--metrics", "loss,spikes", "--out", str(tmp_path)])


def test_directory_that_is_no_logdir(tmp_path, capsys):
    assert "train_inner" in _error(capsys, [str(tmp_path), "--out", str(tmp_path / "o")])


def test_named_validation_subset_is_the_valid_curve(tmp_path):
    """--valid-subset dev-tts logs "| dev-tts | {"dev-tts_loss": ...}"; a second subset keeps its prefix."""
    text = SIGMA.read_text(encoding="utf-8")
    renamed = [line.replace("| valid |", "| dev-tts |").replace('"valid_', '"dev-tts_') for line in text.splitlines()]
    extra = [line.replace("| dev-tts |", "| dev-other |").replace('"dev-tts_', '"dev-other_')
             for line in renamed if "| dev-tts |" in line]
    log = tmp_path / "train.log"
    log.write_text("\n".join(renamed + extra) + "\n", encoding="utf-8")
    original, named = read_run(str(SIGMA)), read_run(str(log))
    assert named.series("loss", "valid") == original.series("loss", "valid") and original.has("loss", "valid")
    assert named.series("dev-other_loss", "valid") == original.series("loss", "valid")
    assert named.series("loss") == original.series("loss")  # the epoch summary "| train |" is not validation
