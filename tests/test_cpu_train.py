"""sigma-cpu-train: fairseq data-parallel training over several CPU processes."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from _toy_mt import USER_DIR, binarize, write_toy_corpus

BIN = Path(sys.executable).parent

# A fairseq-train stand-in that runs the real one, but (1) starts ranks other than 0 from a
# different u, as a rank-local initialisation would, and (2) writes each rank's σReparam u when
# fairseq saves its checkpoints (all ranks pass there).
WRAPPER = r'''#!{python}
import sys
import fairseq_cli.train  # first: it sets up fairseq's logging
import torch
from fairseq import checkpoint_utils
rank = int(sys.argv[sys.argv.index("--distributed-rank") + 1])
import sigma_plugin
sigma_plugin.register()
import importlib
sr = importlib.import_module("sigma_plugin.nn.parametrization")
if rank != 0:
    real_init = sr._SigmaReparam.__init__
    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        with torch.no_grad():
            self.u.add_(0.3 * torch.ones_like(self.u)).div_(self.u.norm())
    sr._SigmaReparam.__init__ = init
real_save = checkpoint_utils.save_checkpoint
def save(cfg, trainer, *args, **kwargs):
    us = {{n: p.u.clone() for n, _, p in sr.sigma_reparam_modules(trainer.get_model())}}
    torch.save(us, f"u.rank{{rank}}.pt")
    return real_save(cfg, trainer, *args, **kwargs)
checkpoint_utils.save_checkpoint = save
sys.exit(fairseq_cli.train.cli_main())
'''


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy")
    write_toy_corpus(folder, n_train=200, n_valid=10)
    return binarize(folder)


def train_args(data, save_dir, max_update=3):
    return [str(data), "--user-dir", USER_DIR, "--task", "translation", "--arch", "sigma_transformer_tiny",
            "--share-all-embeddings", "--criterion", "label_smoothed_cross_entropy_with_sigma",
            "--optimizer", "sgd", "--lr", "0.1", "--lr-scheduler", "fixed", "--max-tokens", "400",
            "--max-update", str(max_update), "--sigma-log-interval", "1", "--log-format", "json",
            "--log-interval", "1", "--save-dir", str(save_dir), "--no-epoch-checkpoints"]


def test_two_cpu_workers_train_together_with_identical_u(data, tmp_path):
    wrapper_dir = tmp_path / "bin"
    wrapper_dir.mkdir()
    wrapper = wrapper_dir / "fairseq-train"
    wrapper.write_text(WRAPPER.format(python=sys.executable))
    wrapper.chmod(0o755)
    env = dict(os.environ, PATH=f"{wrapper_dir}:{os.environ['PATH']}")
    res = subprocess.run([str(BIN / "sigma-cpu-train"), "--nproc", "2", "--", *train_args(data, tmp_path / "ckpt")],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    assert "training on 2 devices" in out
    inner = [json.loads(l.split("| train_inner | ")[1]) for l in out.splitlines() if "| train_inner | " in l]
    assert inner and inner[-1]["num_updates"] == "3" and "ent_enc_self_mean" in inner[-1]
    # rank 1's log beside the run's checkpoints, not in the working directory
    assert (tmp_path / "ckpt" / "cpu_train.rank1.log").exists() and (tmp_path / "ckpt" / "checkpoint_last.pt").exists()
    assert not (tmp_path / "cpu_train.rank1.log").exists()
    assert "distributed init (rank 1): file://" in (tmp_path / "ckpt" / "cpu_train.rank1.log").read_text()
    u0, u1 = (torch.load(tmp_path / f"u.rank{r}.pt", weights_only=True) for r in (0, 1))
    assert len(u0) == 32 and u0.keys() == u1.keys()
    assert all(torch.equal(u0[k], u1[k]) for k in u0), [k for k in u0 if not torch.equal(u0[k], u1[k])][:3]


def _start(data, tmp_path, max_update=10000):
    """sigma-cpu-train on a long run; returns once rank 0 has logged an update."""
    out = tmp_path / "rank0.out"
    proc = subprocess.Popen([str(BIN / "sigma-cpu-train"), "--nproc", "2", "--",
                             *train_args(data, tmp_path / "ckpt", max_update), "--no-save"],
                            cwd=tmp_path, stdout=open(out, "w"), stderr=subprocess.PIPE, text=True)
    first = proc.stderr.readline()  # "sigma-cpu-train: rank 0 pid N, rank 1 pid M (log ...)"
    pids = [int(w.split()[0].rstrip(",")) for w in first.split(" pid ")[1:]]
    assert len(pids) == 2, first
    deadline = time.time() + 300
    while "train_inner" not in out.read_text() and time.time() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.5)
    return proc, pids


def _gone(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"


def test_sigterm_to_the_launcher_stops_every_worker(data, tmp_path):
    proc, pids = _start(data, tmp_path)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM
    assert "SIGTERM received: passed on to the workers" in err
    deadline = time.time() + 30
    while not all(_gone(p) for p in pids) and time.time() < deadline:
        time.sleep(0.2)
    assert all(_gone(p) for p in pids), "orphaned workers"


def test_a_dead_rank_is_named_with_its_status_and_log(data, tmp_path):
    proc, pids = _start(data, tmp_path)
    os.kill(pids[1], signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGKILL
    assert f"rank 1 (pid {pids[1]}) was killed by SIGKILL" in err
    assert f"its log: {tmp_path / 'ckpt' / 'cpu_train.rank1.log'}" in err
    assert _gone(pids[0])


def test_ranks_meet_through_a_file_of_their_own_and_log_beside_the_save_dir(tmp_path):
    """No TCP port is chosen (and freed) before rank 0 binds it: nothing for another program to take."""
    from sigma_plugin.cli.cpu_train import save_dir, worker_commands
    cmds = worker_commands(["DATA", "--save-dir", "a"], 2, str(tmp_path / "rv"), "fairseq-train")
    for rank, cmd in enumerate(cmds):
        assert cmd[cmd.index("--distributed-init-method") + 1] == f"file://{tmp_path / 'rv'}"
        assert cmd[cmd.index("--distributed-rank") + 1] == str(rank)
        assert not any(a.startswith("tcp://") for a in cmd)
    assert save_dir(["DATA", "--save-dir", "a", "--save-dir=b"]) == "b" and save_dir(["DATA"]) == "checkpoints"


def test_cpu_train_refuses_its_own_flags():
    res = subprocess.run([str(BIN / "sigma-cpu-train"), "--nproc", "2", "--", "data", "--distributed-rank", "1"],
                         capture_output=True, text=True)
    assert res.returncode == 2 and "--distributed-rank: set by sigma-cpu-train" in res.stderr
    res = subprocess.run([str(BIN / "sigma-cpu-train"), "--nproc", "1", "--", "data"], capture_output=True, text=True)
    assert res.returncode == 2 and "--nproc must be >= 2" in res.stderr


def test_entropy_alarm_stops_every_rank_and_rank0_alone_saves(data, tmp_path):
    """An alarm threshold above any entropy: both ranks stop at the first check (no rank left
    waiting in a collective), one snapshot is written, and sigma-inspect reads it."""
    save = tmp_path / "ckpt"
    res = subprocess.run([str(BIN / "sigma-cpu-train"), "--nproc", "2", "--", *train_args(data, save, 10),
                          "--sigma-entropy-alarm", "100", "--sigma-entropy-alarm-stop",
                          "--sigma-entropy-alarm-dir", str(save)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    out = res.stdout + res.stderr
    assert res.returncode == 1, out[-3000:]
    assert "Training stopped by --sigma-entropy-alarm-stop" in out
    assert "Training stopped by --sigma-entropy-alarm-stop" in (save / "cpu_train.rank1.log").read_text()
    assert sorted(p.name for p in save.glob("entropy_alarm_u*")) == ["entropy_alarm_u0.pt"]
    inspect = subprocess.run([str(BIN / "sigma-inspect"), "--json", str(save / "entropy_alarm_u0.pt")],
                             capture_output=True, text=True, timeout=300)
    assert inspect.returncode == 0 and json.loads(inspect.stdout)["num_updates"] == 0, inspect.stderr[-2000:]
