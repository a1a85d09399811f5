"""The fairseq-level benches (bench/e2e_wps.py, probe_cost.py, inference.py) and the GPU check:
log parsing, the no-CUDA exit, the autocast check on CPU; the tiny end-to-end runs are marked slow."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
sys.path.insert(0, str(BENCH))

import bench_common  # noqa: E402
import inference  # noqa: E402

LOG = """2026-01-01 10:00:00 | INFO | fairseq_cli.train | begin training epoch 1
2026-01-01 10:00:05 | INFO | train_inner | {"epoch": 1, "update": 0.1, "loss": "9.1", "wps": "500", "ups": "1", "wpb": "1000", "num_updates": "10"}
2026-01-01 10:00:09 | INFO | train_inner | {"epoch": 1, "update": 0.2, "loss": "8.7", "wps": "2000", "ups": "2", "wpb": "1000", "num_updates": "20"}
2026-01-01 10:00:13 | INFO | train_inner | {"epoch": 1, "update": 0.3, "loss": "8.5", "wps": "3000", "ups": "3", "wpb": "1000", "num_updates": "30"}
2026-01-01 10:00:14 | INFO | train | {"epoch": 1, "wps": "99999", "ups": "9"}
"""


def test_wps_from_the_json_log():
    recs = bench_common.train_inner_records(LOG)
    assert [r["num_updates"] for r in recs] == [10, 20, 30]
    wps = bench_common.wps_of_run(recs, log_interval=10)
    assert wps["steady"] == 2500  # median of the intervals after the first
    # all: 30,000 words in 10/1 + 10/2 + 10/3 seconds
    assert wps["all"] == pytest.approx(30000 / (10 + 5 + 10 / 3))
    with pytest.raises(ValueError, match="need >= 2"):
        bench_common.wps_of_run(recs[:1], 10)


def test_generate_speed_line():
    line = "2026-01-01 | INFO | fairseq_cli.generate | Translated 1,300 sentences (39,000 tokens) in 12.3s " \
           "(105.69 sentences/s, 3170.73 tokens/s)"
    m = inference.SPEED.search(line)
    assert m and float(m.group(4)) == 105.69


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_gpu_check_without_cuda_says_so_and_exits_0():
    res = subprocess.run(["bash", str(BENCH / "gpu_check.sh"), "/nonexistent/out"], capture_output=True, text=True,
                         env={**os.environ, "PYTHON": sys.executable})
    assert res.returncode == 0, res.stderr
    assert "SKIPPED - torch sees no CUDA device" in res.stdout and "nothing was checked" in res.stdout
    assert not Path("/nonexistent/out").exists()


def test_sigma_stays_fp32_under_autocast_on_cpu():
    res = subprocess.run([sys.executable, str(BENCH / "gpu_precision.py"), "autocast", "cpu"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count("ok (cpu)") == 4


@pytest.mark.slow
def test_tiny_end_to_end_runs(tmp_path):
    """e2e_wps, inference and probe_cost on small data (the models keep their bench sizes)."""
    import fairseq_runs
    work = tmp_path / "work"
    fairseq_runs.mt_data(work, n_train=200, n_valid=12)  # reused by the benches (.done marker)
    fairseq_runs.asr_data(work, n_train=12, n_valid=4)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def bench(script, *args):
        res = subprocess.run([sys.executable, str(BENCH / script), "--work", str(work), *args],
                             capture_output=True, text=True, env=env)
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
        return res.stdout

    out = bench("e2e_wps.py", "--pairs", "1", "--updates", "4", "--log-interval", "2", "--out", str(tmp_path / "e.md"),
                "--extra", "--max-tokens", "400")
    assert "| mt | sigma_transformer |" in out and "| asr | sigma_s2t_ctc |" in out
    out = bench("inference.py", "--rounds", "1", "--beam", "2", "--length", "4", "--out", str(tmp_path / "i.md"))
    assert "| sigma_export |" in (tmp_path / "i.md").read_text()
    out = bench("probe_cost.py", "--reps", "1", "--warmup", "0", "--out", str(tmp_path / "p.md"))
    assert "| mt | sigma_transformer |" in out and "| asr | sigma_s2t_ctc |" in out
    out = bench("build_load.py", "--depths", "2", "--dim", "64", "--rounds", "1", "--out", str(tmp_path / "b.md"))
    table = (tmp_path / "b.md").read_text()
    assert "| 2L-2L | load | sigma |" in table  # the sigma load ran with SVD refused
    assert all(f"| 2L-2L | build | {v} |" in table for v in ("sigma", "sigma_register", "parametrize_floor"))
