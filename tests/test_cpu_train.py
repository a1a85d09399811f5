"""sigma-cpu-train: fairseq data-parallel training over several CPU processes."""
import json
import subprocess
import sys
from pathlib import Path

from _toy_mt import USER_DIR, binarize, write_toy_corpus

BIN = Path(sys.executable).parent


def test_two_cpu_workers_train_together(tmp_path):
    write_toy_corpus(tmp_path, n_train=200, n_valid=10)
    data = binarize(tmp_path)
    args = [str(data), "--user-dir", USER_DIR, "--task", "translation", "--arch", "sigma_transformer_tiny",
            "--share-all-embeddings", "--criterion", "label_smoothed_cross_entropy_with_sigma",
            "--optimizer", "sgd", "--lr", "0.1", "--lr-scheduler", "fixed", "--max-tokens", "400",
            "--max-update", "3", "--sigma-log-interval", "1", "--log-format", "json", "--log-interval", "1",
            "--save-dir", str(tmp_path / "ckpt"), "--no-epoch-checkpoints"]
    res = subprocess.run([str(BIN / "sigma-cpu-train"), "--nproc", "2", "--", *args], cwd=tmp_path,
                         capture_output=True, text=True, timeout=600)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    assert "training on 2 devices" in out
    inner = [json.loads(l.split("| train_inner | ")[1]) for l in out.splitlines() if "| train_inner | " in l]
    assert inner and inner[-1]["num_updates"] == "3" and "ent_enc_self_mean" in inner[-1]
    assert (tmp_path / "cpu_train.rank1.log").exists() and (tmp_path / "ckpt" / "checkpoint_last.pt").exists()


def test_cpu_train_refuses_its_own_flags():
    res = subprocess.run([str(BIN / "sigma-cpu-train"), "--nproc", "2", "--", "data", "--distributed-rank", "1"],
                         capture_output=True, text=True)
    assert res.returncode == 2 and "--distributed-rank: set by sigma-cpu-train" in res.stderr
    res = subprocess.run([str(BIN / "sigma-cpu-train"), "--nproc", "1", "--", "data"], capture_output=True, text=True)
    assert res.returncode == 2 and "--nproc must be >= 2" in res.stderr
