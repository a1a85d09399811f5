"""The shared step utilities: atomic writes, the one error type and its one-line report, and
TensorBoard scalars read with tensorboard's EventAccumulator."""
import os
import subprocess
import sys

import pytest

from sigma_plugin.util import StepError, atomic_open, atomic_path, fail, run_cli, write_text
from sigma_plugin.util.run_logs import read_scalars


def test_atomic_path_leaves_no_partial_file_on_error(tmp_path):
    target = tmp_path / "out" / "f.txt"  # the folder is made
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert os.listdir(tmp_path / "out") == []
    write_text(target, "old\n")
    with pytest.raises(RuntimeError):
        with atomic_open(target) as f:
            f.write("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old\n" and os.listdir(tmp_path / "out") == ["f.txt"]
    with atomic_open(target) as f:
        f.write("new\n")
    assert target.read_text() == "new\n" and os.listdir(tmp_path / "out") == ["f.txt"]


def test_run_cli_reports_a_step_error_in_one_line(capsys):
    def main(argv):
        fail(f"{argv[0]}: file not found")

    assert run_cli(None, main, ["x.txt"]) == 2
    assert capsys.readouterr().err == "error: x.txt: file not found\n"
    assert run_cli("sigma-plot", main, ["y"]) == 2
    assert capsys.readouterr().err == "sigma-plot: error: y: file not found\n"
    assert run_cli(None, lambda argv: None) == 0 and run_cli(None, lambda argv: 3) == 3
    with pytest.raises(ValueError):  # not a user error: a traceback, as before
        run_cli(None, lambda argv: int("x"))


def test_a_recipe_step_exits_2_with_one_line(tmp_path):
    res = subprocess.run([sys.executable, "-m", "sigma_plugin.recipe.score_table", str(tmp_path / "nope.json")],
                         capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.startswith("error: ") and len(res.stderr.splitlines()) == 1


def test_tensorboard_scalars_survive_a_truncated_tail(tmp_path):
    from tensorboardX import SummaryWriter

    with SummaryWriter(str(tmp_path)) as w:
        for step in (1, 2, 3):
            w.add_scalar("loss", 10.0 / step, step)
    (events,) = tmp_path.glob("events.out.tfevents.*")
    with open(events, "ab") as f:  # a run still writing: half a record
        f.write(b"\x40\x00\x00\x00\x00\x00\x00\x00\x01\x02")
    assert read_scalars(str(tmp_path)) == {"loss": {1: 10.0, 2: 5.0, 3: pytest.approx(10 / 3)}}
    with pytest.raises(StepError, match="no TensorBoard event files"):
        read_scalars(str(tmp_path / "empty"))


def test_sentencepiece_training_errors_are_one_line(tmp_path):
    from sigma_plugin.util.spm import train_sentencepiece

    (tmp_path / "a.txt").write_text("a b c\nb c a\n")
    with pytest.raises(StepError, match=r"--vocab-size 500 is too large for this corpus .*; lower it"):
        train_sentencepiece([tmp_path / "a.txt"], tmp_path / "spm" / "m", 500)
    with pytest.raises(StepError, match="nope.txt: SentencePiece training input is missing or empty"):
        train_sentencepiece([tmp_path / "nope.txt"], tmp_path / "spm" / "m", 8)
    assert os.listdir(tmp_path / "spm") == []  # no model, no temporary folder left
    assert train_sentencepiece([tmp_path / "a.txt"], tmp_path / "spm" / "m", 6) == tmp_path / "spm" / "m.model"
    assert sorted(os.listdir(tmp_path / "spm")) == ["m.model", "m.vocab"]
