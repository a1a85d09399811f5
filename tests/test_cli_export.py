"""sigma-export: the fold equals remove_sigma_reparam, stock fairseq-generate (no --user-dir) gives
the plugin model's hypotheses, and what has no stock equivalent is refused."""
import argparse

import pytest
import torch

from _tiny_mt import doc_examples, generate, tiny_run
from sigma_plugin.cli.export import main
from sigma_plugin.cli.sigma_state import fold_state_dict
from sigma_plugin.nn import remove_sigma_reparam


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    return tiny_run(tmp_path_factory)


@pytest.fixture(scope="module")
def exported(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "stock.pt"
    assert main([str(tiny.checkpoint), str(out)]) == 0
    return out


@torch.no_grad()
def test_fold_equals_remove_sigma_reparam(tiny):
    import sigma_plugin
    sigma_plugin.register()  # imported before fairseq here: the models and the checkpoint allowlist
    from fairseq import checkpoint_utils
    state = checkpoint_utils.load_checkpoint_to_cpu(str(tiny.checkpoint))
    models, _ = checkpoint_utils.load_model_ensemble([str(tiny.checkpoint)], arg_overrides={"data": str(tiny.data)})
    model = models[0].eval()
    assert len(remove_sigma_reparam(model)) == 32
    expected, folded = model.state_dict(), fold_state_dict(state["model"])
    assert sorted(folded) == sorted(expected)
    for key, value in expected.items():
        assert torch.equal(folded[key], value), key  # bit for bit: the same fp32 arithmetic


def test_stock_checkpoint_is_plain(exported):
    state = torch.load(exported, weights_only=True)  # no allowlist needed
    cfg = state["cfg"]["model"]
    assert isinstance(cfg, dict) and cfg["_name"] == "transformer_tiny"
    assert not any(k.startswith("sigma_") for k in cfg) and cfg["user_dir"] is None
    assert state["cfg"]["criterion"]["_name"] == "label_smoothed_cross_entropy"
    assert not any("parametrizations" in k for k in state["model"])
    assert "last_optimizer_state" not in state


def test_stock_generate_matches_plugin(tiny, exported):
    plugin = generate(tiny.data, tiny.checkpoint, user_dir=True)
    stock = generate(tiny.data, exported, user_dir=False)
    kinds = [line[0] for line in plugin]
    assert kinds.count("H") == kinds.count("D") == kinds.count("P") > 0  # per sentence
    assert stock == plugin  # hypotheses and their scores


def test_doc_example_runs(tiny, tmp_path, capsys):
    (example,) = doc_examples("sigma-export")
    example[:2] = [str(tiny.checkpoint), str(tmp_path / "out.pt")]
    assert main(example) == 0
    assert "σReparam weights folded" in capsys.readouterr().out


def _variant(tiny, tmp_path, **model_args):
    state = torch.load(tiny.checkpoint, weights_only=False)
    ns = argparse.Namespace(**{**vars(state["cfg"]["model"]), **model_args})
    state["cfg"]["model"] = ns
    path = tmp_path / "variant.pt"
    torch.save(state, path)
    return path


@pytest.mark.parametrize("change, reason", [
    ({"sigma_layernorm": "none"}, "--sigma-layernorm none"),
    ({"sigma_deepnorm": True}, "--sigma-deepnorm"),
    ({"arch": "sigma_s2t_ctc_tiny", "_name": "sigma_s2t_ctc_tiny"}, "no stock fairseq equivalent"),
])
def test_refuses_what_stock_fairseq_cannot_express(tiny, tmp_path, capsys, change, reason):
    path = _variant(tiny, tmp_path, **change)
    assert main([str(path), str(tmp_path / "out.pt")]) == 2
    err = capsys.readouterr().err
    assert reason in err and "cannot export" in err
    assert not (tmp_path / "out.pt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["variant.pt"]  # no temp file left behind


def test_pre_layernorm_maps_to_normalize_before(tiny, tmp_path):
    path = _variant(tiny, tmp_path, sigma_layernorm="pre", encoder_normalize_before=True,
                    decoder_normalize_before=True)
    assert main([str(path), str(tmp_path / "out.pt")]) == 0
    cfg = torch.load(tmp_path / "out.pt", weights_only=True)["cfg"]["model"]
    assert cfg["encoder_normalize_before"] is True and cfg["decoder_normalize_before"] is True


def test_existing_out_needs_force(tiny, exported, capsys):
    assert main([str(tiny.checkpoint), str(exported)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main([str(tiny.checkpoint), str(exported), "--force"]) == 0


def test_stock_load_check_leaves_this_process_allowlist_alone(tmp_path):
    """The 'would stock fairseq load it' check refuses what torch's default allowlist refuses
    (argparse.Namespace, which sigma_plugin allowlists in this process) and passes plain data,
    without touching this process's safe globals."""
    import argparse
    import sigma_plugin
    from sigma_plugin.util.steps import StepError
    from sigma_plugin.cli.export import load_like_stock
    sigma_plugin.register()
    before = list(torch.serialization.get_safe_globals())
    assert argparse.Namespace in before
    torch.save({"args": argparse.Namespace(a=1)}, tmp_path / "ns.pt")
    torch.save({"cfg": {"model": {"arch": "transformer"}}, "model": {"w": torch.ones(2)}}, tmp_path / "plain.pt")
    torch.load(tmp_path / "ns.pt", weights_only=True)  # loads here, thanks to the plugin's allowlist ...
    with pytest.raises(StepError, match="would not load in stock fairseq.*argparse.Namespace"):
        load_like_stock(str(tmp_path / "ns.pt"))  # ... but not in stock fairseq
    load_like_stock(str(tmp_path / "plain.pt"))
    assert list(torch.serialization.get_safe_globals()) == before
