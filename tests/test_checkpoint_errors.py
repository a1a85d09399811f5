"""Checkpoints the tools cannot use: one line naming the file and the reason, no traceback, no
torch advice to allowlist what a malicious file asks for."""
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from _tiny_mt import tiny_run
from sigma_plugin.cli.export import main as export_main
from sigma_plugin.cli.inspect import main as inspect_main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    return tiny_run(tmp_path_factory)


class _RunsCode:
    def __reduce__(self):
        return (io.open, ("/tmp/this-file-is-never-created-by-a-load", "w"))


@pytest.fixture
def malicious(tmp_path):
    import torch
    path = tmp_path / "checkpoint_1_2.pt"
    torch.save({"model": {}, "x": _RunsCode()}, path)
    return path


@pytest.fixture
def truncated(tiny, tmp_path):
    path = tmp_path / "checkpoint_1_2.pt"
    data = tiny.checkpoint.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _average(*paths, output):
    return subprocess.run([sys.executable, "-m", "sigma_plugin.recipe.average", "--checkpoints", *map(str, paths),
                           "--output", str(output)], capture_output=True, text=True, cwd=ROOT)


def test_average_names_a_truncated_checkpoint_in_one_line(tiny, truncated, tmp_path):
    res = _average(tiny.checkpoint, truncated, output=tmp_path / "avg.pt")
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr[-2000:]
    assert res.stderr.strip() == f"error: {truncated}: the checkpoint is truncated or damaged (not a complete torch checkpoint)"
    assert not (tmp_path / "avg.pt").exists()


def test_average_refuses_a_malicious_checkpoint_in_one_line(malicious, tmp_path):
    res = _average(malicious, output=tmp_path / "avg.pt")
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr[-2000:]
    assert "holds objects that would run code" in res.stderr and "io.open" in res.stderr
    assert "not loaded" in res.stderr and "add_safe_globals" not in res.stderr


@pytest.mark.parametrize("tool", [inspect_main, export_main])
def test_tools_refuse_a_malicious_checkpoint_in_one_line(tool, malicious, tmp_path, capsys):
    argv = [str(malicious)] + ([str(tmp_path / "out.pt")] if tool is export_main else [])
    assert tool(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "holds objects that would run code" in err and "was not loaded" in err
    assert "add_safe_globals" not in err and "weights_only" not in err.split("(")[0]
    assert not os.path.exists("/tmp/this-file-is-never-created-by-a-load")


def test_tools_name_a_truncated_checkpoint_and_a_junk_file(truncated, tmp_path, capsys):
    assert inspect_main([str(truncated)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is truncated or damaged" in err
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    assert inspect_main([str(tmp_path / "junk.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is not a torch checkpoint" in err and "run code" not in err


def test_export_of_a_stock_checkpoint_says_so(tiny, tmp_path, capsys):
    stock = tmp_path / "stock.pt"
    assert export_main([str(tiny.checkpoint), str(stock)]) == 0
    capsys.readouterr()
    assert export_main([str(stock), str(tmp_path / "again.pt")]) == 2
    err = capsys.readouterr().err
    assert "already a stock fairseq checkpoint" in err and "no stock fairseq equivalent" not in err
    assert not (tmp_path / "again.pt").exists()
