"""sigma-inspect reports the values of the core functions on the model as fairseq rebuilds it."""
import json
import math

import pytest
import torch

from _tiny_mt import doc_examples, tiny_run
from sigma_plugin.cli.inspect import inspect_checkpoint, main
from sigma_plugin.nn import entropy_lower_bound, qk_spectral_norm, sigma_reparam_modules
from sigma_plugin.models.introspection import attention_modules


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    return tiny_run(tmp_path_factory)


@pytest.fixture(scope="module")
def model(tiny):
    import sigma_plugin
    sigma_plugin.register()  # imported before fairseq here: the models and the checkpoint allowlist
    from fairseq import checkpoint_utils
    models, _ = checkpoint_utils.load_model_ensemble([str(tiny.checkpoint)], arg_overrides={"data": str(tiny.data)})
    return models[0].eval()


@pytest.fixture(scope="module")
def report(tiny):
    return inspect_checkpoint(str(tiny.checkpoint))


@torch.no_grad()
def test_weights_match_the_model(model, report):
    rows = {r["module"]: r for r in report["weights"]}
    reparam = list(sigma_reparam_modules(model))
    assert len(reparam) == 32 and all(rows[name]["gamma"] is not None for name, _, _ in reparam)
    for name, module, p in reparam:
        row = rows[name]
        raw = module.parametrizations.weight.original
        assert row["gamma"] == pytest.approx(float(p.gamma), rel=1e-6)
        assert row["sigma_exact"] == pytest.approx(float(torch.linalg.matrix_norm(raw, ord=2)), rel=1e-5)
        w_hat = module.weight  # eval mode: γ/σ_est·W
        torch.testing.assert_close(w_hat, row["gamma"] / row["sigma_est"] * raw, rtol=1e-5, atol=1e-7)
        assert row["effective_norm"] == pytest.approx(float(torch.linalg.matrix_norm(w_hat, ord=2)), rel=1e-4)


def test_attention_matches_qk_spectral_norm_and_bound(model, report):
    modules, _ = attention_modules(model)
    rows = {(r["kind"], int(r["layer"].rsplit(".", 1)[1])): r for r in report["attention"]}
    assert len(rows) == len(modules) == 6
    a = report["bound_assumptions"]
    assert a["keys"] == 64 and a["input_norm"] == {"encoder": 8.0, "decoder": 8.0}  # √64
    for name, attn in modules.items():
        kind, layer = name.split(".")
        row = rows[(kind, int(layer))]
        expected = qk_spectral_norm(attn)
        assert row["sigma_qk"] == pytest.approx(expected.tolist(), rel=1e-4)
        assert row["sigma_qk_max"] == pytest.approx(float(expected.max()), rel=1e-4)
        s = row["sigma_qk_max"] * (8.0 ** 2 + 1) * math.sqrt(64)
        assert row["s"] == pytest.approx(s, rel=1e-6)
        assert row["entropy_lower_bound"] == pytest.approx(float(entropy_lower_bound(s, 64)), rel=1e-6)


def test_bound_follows_input_norm_and_keys(tiny):
    r = inspect_checkpoint(str(tiny.checkpoint), input_norm=0.5, keys=16)["attention"][0]
    s = r["sigma_qk_max"] * (0.25 + 1) * 4
    assert r["s"] == pytest.approx(s) and r["entropy_lower_bound"] == pytest.approx(float(entropy_lower_bound(s, 16)))
    assert 0 < r["entropy_lower_bound"] <= math.log(16)


def test_cli_json_and_tables(tiny, capsys):
    assert main([str(tiny.checkpoint), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["arch"] == "sigma_transformer_tiny" and len(data["weights"]) == 32
    assert main([str(tiny.checkpoint)]) == 0
    out = capsys.readouterr().out
    for text in ("== encoder.layers.0 ==", "== decoder.layers.1 ==", "σ_exact", "‖W_hat‖₂", "entropy ≥ (nats)",
                 "T = 64 keys"):
        assert text in out


def test_doc_example_runs(tiny, capsys):
    for example in doc_examples("sigma-inspect"):
        example[0] = str(tiny.checkpoint)
        assert main(example) == 0
        assert "encoder.layers.0" in capsys.readouterr().out


def test_errors(tmp_path, tiny, capsys):
    assert main([str(tmp_path / "none.pt")]) == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    assert main([str(tmp_path / "junk.pt")]) == 2
    assert "is not a torch checkpoint" in capsys.readouterr().err
    assert main([str(tiny.checkpoint), "--keys", "1"]) == 2
    assert "--keys" in capsys.readouterr().err
