"""bench/overhead.py and its helpers: the variants compute the plain function at init, the
reference-style layer really runs inside fairseq attention, tables, verdicts, one tiny shape."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import bench_common  # noqa: E402
import overhead  # noqa: E402
import overhead_variants as ov  # noqa: E402


@pytest.fixture
def plain_and_input():
    torch.manual_seed(0)
    stack = ov.build_stack(2, 64, 2, 256)
    x = torch.randn(16, 3, 64)
    return stack, x, torch.zeros(3, 16, dtype=torch.bool)


@pytest.mark.parametrize("name", ["sigma", "snlinear", "torch_sn"])
def test_variants_compute_the_plain_function_at_init(plain_and_input, name):
    plain, x, pad = plain_and_input
    stack = ov.make_variant(name, plain)
    # eval: γ₀ = σ₀ exactly; a training forward first advances u by one step (σ moves a little)
    for training, tol in ((False, 2e-3), (True, 2e-2)):
        plain.train(training), stack.train(training)
        with torch.no_grad(), ov.eval_scope(name):
            torch.testing.assert_close(ov.forward(stack, x, pad), ov.forward(plain, x, pad), rtol=tol, atol=tol)


def test_snlinear_runs_inside_attention_and_matches_sigma(plain_and_input):
    plain, x, pad = plain_and_input
    sn, sigma = ov.make_variant("snlinear", plain), ov.make_variant("sigma", plain)
    q_proj = sn[0].self_attn.q_proj
    assert isinstance(q_proj, ov.SNLinear)
    calls = []
    q_proj.register_forward_hook(lambda *a: calls.append(1))
    with torch.no_grad():
        ov.forward(sn, x, pad)
    assert calls, "fairseq's attention fast path bypassed SNLinear.forward"
    # γ scales the function: doubling every γ changes the output (σ really is used)
    for m in sn.modules():
        if isinstance(m, ov.SNLinear):
            m.gamma.data *= 2
    with torch.no_grad():
        assert not torch.allclose(ov.forward(sn, x, pad), ov.forward(sigma, x, pad), atol=1e-3)


def test_snlinear_training_step_advances_u_and_trains_gamma(plain_and_input):
    plain, x, pad = plain_and_input
    sn = ov.make_variant("snlinear", plain).train()
    layer = sn[0].fc1
    u0 = layer.u.clone()
    ov.forward(sn, x, pad).pow(2).mean().backward()
    assert not torch.equal(layer.u, u0) and layer.gamma.grad is not None and layer.weight.grad is not None
    sn.eval()
    u1 = layer.u.clone()
    with torch.no_grad():
        ov.forward(sn, x, pad)
    assert torch.equal(layer.u, u1)


def test_markdown_table_written_atomically(tmp_path):
    text = bench_common.markdown_table(["a", "b"], [["x", 1.23456], ["y", 2]])
    assert text.splitlines() == ["| a | b |", "|---|---|", "| x | 1.235 |", "| y | 2 |"]
    out = tmp_path / "sub" / "t.md"
    bench_common.emit_report(text, out)
    assert out.read_text() == text and [p.name for p in out.parent.iterdir()] == ["t.md"]


def test_rotated_order():
    assert [bench_common.rotated("ABC", r) for r in range(4)] == [list("ABC"), list("BCA"), list("CAB"), list("ABC")]


def test_verdict_names_missed_targets_and_the_leader():
    def row(v, tr, ev, mem=1.0):
        return {"variant": v, "train_x": tr, "eval_x": ev, "mem_train_x": mem, "mem_eval_x": mem}
    rows = [row("plain", 1, 1), row("sigma", 1.01, 1.02, 1.2), row("snlinear", 1.05, 1.01), row("torch_sn", 1.1, 1.1)]
    v = overhead.verdict(rows)
    assert "train 1.010x ok" in v and "eval 1.020x MISSED" in v and "memory 1.200x MISSED" in v
    assert "NOT ahead of snlinear" in v and "ahead of torch_sn" in v


def test_one_tiny_shape_all_variants(tmp_path, capsys):
    out = tmp_path / "o.md"
    overhead.main(["--dims", "64", "--tokens", "128", "--layers", "1", "--reps", "1", "--threads", "1",
                   "--no-memory", "--out", str(out), "--variants", *ov.VARIANTS])
    printed = capsys.readouterr().out
    assert "[1/1] d=64 tokens=128" in printed and "d=64, 128 tokens: train" in printed
    table = out.read_text()
    for name in ov.VARIANTS:
        assert f"| 64 | 128 | {name} | 1+1 |" in table
    assert "Memory: not measured" in table


def test_memory_in_subprocesses(tmp_path):
    out = tmp_path / "m.md"
    res = subprocess.run([sys.executable, str(BENCH / "overhead.py"), "--dims", "256", "--tokens", "512", "--layers", "1",
                          "--reps", "1", "--warmup", "0", "--threads", "1", "--variants", "plain", "sigma",
                          "--out", str(out)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    table = out.read_text()
    assert "fresh subprocess per variant and shape" in table and "mem train x" in table
    sigma_row = next(line for line in table.splitlines() if "| sigma |" in line).split("|")
    assert float(sigma_row[-4]) > 0 and 0.5 < float(sigma_row[-3]) < 2  # train peak MiB, mem train x


def test_rejects_bad_options():
    with pytest.raises(SystemExit):
        overhead.parse_args(["--reps", "0"])
    with pytest.raises(SystemExit):
        overhead.parse_args(["--variants", "sigma", "plain"])
    assert overhead.parse_args(["--quick"]).dims == [512]


def test_time_budget_per_shape_orders_by_cost_and_skips_warmup_after_slow_rounds(capsys):
    overhead.main(["--dims", "64", "32", "--tokens", "128", "--layers", "1", "--reps", "3", "--threads", "1",
                   "--no-memory", "--max-shape-s", "1e-9", "--variants", "plain", "sigma"])
    printed = capsys.readouterr().out
    # cheapest shape first; a budget this small gives one timed round, and the second shape no warm-up
    assert printed.index("[1/2] d=32") < printed.index("[2/2] d=64 tokens=128: timing 2 variants (0 warm-up)")
    assert "| 32 | 128 | sigma | 1+1 |" in printed and "| 64 | 128 | sigma | 0+1 |" in printed


def test_memory_only_skips_timing(tmp_path, capsys):
    out = tmp_path / "m.md"
    overhead.main(["--memory-only", "--dims", "64", "--tokens", "128", "--layers", "1", "--threads", "1",
                   "--variants", "plain", "sigma", "--out", str(out)])
    table = out.read_text()
    assert "memory only (no timing)" in table and "| mem train x | mem eval x |" in table
    assert "train ms" not in table and "| 64 | 128 | sigma |" in table
    assert "d=64, 128 tokens: memory" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        overhead.parse_args(["--memory-only", "--no-memory"])
