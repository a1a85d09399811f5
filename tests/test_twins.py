"""σReparam twins of every fairseq model (`sigma_<arch>`, `<criterion>_with_sigma`): one model of each
family trained 2 updates through fairseq-train, reloaded through checkpoint_utils, and a stock
checkpoint of the same arch imported with the same outputs."""
import json
import re

import numpy as np
import pytest
import torch

import sigma_plugin
from _families import FAMILIES, make_data
from _toy_mt import BIN, USER_DIR, run
from sigma_plugin.nn import get_sigma_reparam, sigma_reparam_modules

SUBSET = {"mt": "valid", "lm": "valid", "asr": "dev-tone", "w2v": "valid"}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp("families"))


def train_lines(text):
    return [json.loads(line[line.index("{"):]) for line in text.splitlines() if "| train_inner |" in line]


def outputs(model, sample):
    """Log-probabilities (for wav2vec 2.0 pre-training: the unmasked features, its loss draws masks
    and negatives), seeds fixed for the models that draw masks in their forward."""
    model.eval()
    torch.manual_seed(0)
    np.random.seed(0)
    pretraining = hasattr(model, "quantizer") and hasattr(model, "extract_features")
    with torch.no_grad():
        out = model(**sample["net_input"], **({"features_only": True, "mask": False} if pretraining else {}))
    try:
        return model.get_normalized_probs(out, log_probs=True).float()
    except (NotImplementedError, TypeError, KeyError, AttributeError):
        return (out["x"] if isinstance(out, dict) else out[0]).float()


def max_delta(a, b) -> float:
    """max |a - b| over the finite entries; the non-finite ones (padded frames, masked logits)
    must sit at the same places with the same values."""
    finite = torch.isfinite(a)
    assert torch.equal(finite, torch.isfinite(b)) and torch.equal(a[~finite].nan_to_num(), b[~finite].nan_to_num())
    return (a[finite] - b[finite]).abs().max().item()


def a_batch(task, family):
    subset = SUBSET[family.data]
    task.load_dataset(subset)
    ds = task.dataset(subset)
    return ds.collater([ds[i] for i in range(min(3, len(ds)))])


def test_every_registered_arch_has_a_twin():
    from fairseq.models import ARCH_MODEL_NAME_REGISTRY, MODEL_DATACLASS_REGISTRY, MODEL_REGISTRY
    from sigma_plugin.models.twins import SigmaTwin
    sigma_plugin.register()
    stock = [a for a, m in ARCH_MODEL_NAME_REGISTRY.items() if not a.startswith("sigma_") and not m.startswith("sigma_")]
    assert len(stock) > 100
    missing = [a for a in stock if "sigma_" + a not in ARCH_MODEL_NAME_REGISTRY]
    assert not missing
    for arch in stock:
        twin_model = ARCH_MODEL_NAME_REGISTRY["sigma_" + arch]
        cls = MODEL_REGISTRY[twin_model]
        assert issubclass(cls, SigmaTwin) and issubclass(cls, MODEL_REGISTRY[ARCH_MODEL_NAME_REGISTRY[arch]])
        if twin_model in MODEL_DATACLASS_REGISTRY:  # the sigma fields survive into cfg.model
            assert "sigma_gamma_init" in MODEL_DATACLASS_REGISTRY[twin_model].__dataclass_fields__


def test_every_criterion_with_a_dataclass_has_a_twin():
    from fairseq.criterions import CRITERION_DATACLASS_REGISTRY, CRITERION_REGISTRY
    sigma_plugin.register()
    stock = [c for c in CRITERION_DATACLASS_REGISTRY if not c.endswith("_with_sigma") and not c.startswith("sigma_")]
    assert {"cross_entropy", "masked_lm", "ctc", "wav2vec"} <= set(stock)
    assert all(c + "_with_sigma" in CRITERION_REGISTRY for c in stock)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_twin_trains_reloads_and_imports_the_stock_checkpoint(name, data, tmp_path):
    from fairseq import checkpoint_utils
    from sigma_plugin.models.stock_import import load_stock_as_twin
    sigma_plugin.register()
    family = FAMILIES[name]
    run(family.train_cmd(data, tmp_path / "stock", twin=False))
    res = run(family.train_cmd(data, tmp_path / "twin", twin=True))
    lines = train_lines(res.stdout + res.stderr)
    assert len(lines) == 2 and family.entropy_key in lines[-1] and "gamma_max" in lines[-1], lines[-1]
    assert not any(k.startswith("sigma/") for k in lines[-1])  # only the reduced metrics are logged

    # the twin's checkpoint reloads with σReparam, and two load paths give the same outputs
    ckpt = tmp_path / "twin" / "checkpoint_last.pt"
    (loaded,), cfg, task = checkpoint_utils.load_model_ensemble_and_task([str(ckpt)])
    reparam = list(sigma_reparam_modules(loaded))
    assert reparam, "no σReparam weight after reloading"
    state = checkpoint_utils.load_checkpoint_to_cpu(str(ckpt))["model"]
    for qname, _, p in reparam:
        assert torch.equal(p.u, state[f"{qname}.parametrizations.weight.0.u"])
    rebuilt = task.build_model(cfg.model)
    rebuilt.load_state_dict(state, strict=True, model_cfg=cfg.model)
    sample = a_batch(task, family)
    assert max_delta(outputs(loaded, sample), outputs(rebuilt, sample)) == 0

    # the stock checkpoint of the same arch imports into the twin with the same function
    stock_ckpt = str(tmp_path / "stock" / "checkpoint_last.pt")
    (stock,), _, stock_task = checkpoint_utils.load_model_ensemble_and_task([stock_ckpt])
    (imported,), _, _ = load_stock_as_twin(stock_ckpt)
    assert type(imported).__name__ != type(stock).__name__
    names = [q for q, _, _ in sigma_reparam_modules(imported)]
    assert names and all(get_sigma_reparam(imported.get_submodule(q)).imported for q in names)
    sample = a_batch(stock_task, family)
    delta = max_delta(outputs(imported, sample), outputs(stock, sample))
    assert delta <= 1e-4, f"max |Δ| after import: {delta}"


def test_finetune_from_a_stock_lm_checkpoint_and_sigma_twin_command(data, tmp_path):
    """fairseq-train --finetune-from-model and --restore-file --reset-optimizer read a stock
    transformer_lm checkpoint into sigma_transformer_lm; sigma-twin prints a command that runs."""
    family = FAMILIES["transformer_lm"]
    run(family.train_cmd(data, tmp_path / "stock", twin=False))
    stock = tmp_path / "stock" / "checkpoint_last.pt"
    res = run(family.train_cmd(data, tmp_path / "ft", True, 2, "--finetune-from-model", str(stock)))
    text = res.stdout + res.stderr
    assert "loading pretrained model from" in text and train_lines(text)
    res = run(family.train_cmd(data, tmp_path / "rs", True, 2, "--restore-file", str(stock), "--reset-optimizer",
                               "--reset-dataloader", "--reset-meters", "--reset-lr-scheduler"))
    assert "Loaded checkpoint" in res.stdout + res.stderr

    printed = run([str(BIN / "sigma-twin"), str(stock), str(data["lm"]), "--verify"]).stdout
    delta = re.search(r"max \|Δ log-prob\| = (\S+) on valid", printed)
    assert delta and float(delta.group(1)) <= 1e-4, printed
    cmd = next(line for line in printed.splitlines() if line.startswith("fairseq-train")).rstrip(" \\").split()
    assert cmd[:2] == ["fairseq-train", str(data["lm"])] and "--arch" in cmd and "sigma_transformer_lm" in cmd
    assert "--tokens-per-sample" in cmd and "--finetune-from-model" in cmd
    res = run([str(BIN / cmd[0])] + cmd[1:] + ["--optimizer", "adam", "--lr", "1e-4", "--max-update", "1", "--cpu",
                                                "--max-tokens", "512", "--save-dir", str(tmp_path / "printed"),
                                                "--required-batch-size-multiple", "1"])
    assert "done training" in res.stdout + res.stderr


@pytest.mark.parametrize("flags,message", [
    (["--checkpoint-activations"], "--checkpoint-activations is not supported with σReparam"),
    (["--offload-activations"], "--offload-activations is not supported with σReparam"),
    (["--quant-noise-pq", "0.1"], "--quant-noise-pq is not supported with σReparam"),
    (["--store-ema"], "--store-ema is not supported with σReparam"),
    (["--sigma-deepnorm"], "--sigma-deepnorm is a post-LN method; it cannot be combined with --sigma-layernorm "
                           "stock \\(pre-LN here\\)"),
])
def test_unsafe_flags_are_one_line_errors(data, tmp_path, flags, message):
    import subprocess
    family = FAMILIES["transformer_lm"]
    cmd = family.train_cmd(data, tmp_path / "x", True, 1, *flags)
    if "--sigma-deepnorm" in flags:  # pre-LN by its arch function (base_lm_architecture)
        cmd[cmd.index("sigma_transformer_lm")] = "sigma_transformer_lm_gpt2_tiny"
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode != 0
    err = res.stderr.strip().splitlines()
    assert re.search(message, err[-1]) and "Traceback" not in res.stderr, res.stderr[-2000:]


def test_fully_sharded_is_refused_when_fairseq_gets_that_far():
    """fairseq-train stops earlier without fairscale; with it, the build is refused in one line."""
    import argparse
    from sigma_plugin.models.sigma_flags import SigmaOptionError
    from sigma_plugin.models.sigma_validation import prepare_sigma_args
    with pytest.raises(SigmaOptionError, match="--ddp-backend fully_sharded is not supported with σReparam"):
        prepare_sigma_args(argparse.Namespace(ddp_backend="fully_sharded"))
    prepare_sigma_args(argparse.Namespace(ddp_backend="fully_sharded", sigma_reparam="none"))


def test_layernorm_flag_overrides_the_arch_function(data):
    """base_lm_architecture hard-codes pre-LN; --sigma-layernorm post gives a post-LN LM."""
    from fairseq import options, tasks
    sigma_plugin.register()
    for flag, pre in (("stock", True), ("post", False), ("pre", True)):
        argv = [str(data["lm"]), "--user-dir", USER_DIR, "--task", "language_modeling", "--arch",
                "sigma_transformer_lm_gpt2_tiny", "--decoder-layers", "1", "--sigma-layernorm", flag, "--cpu"]
        args = options.parse_args_and_arch(options.get_training_parser(), argv)
        task = tasks.setup_task(args)
        model = task.build_model(args)
        assert model.decoder.layers[0].normalize_before is pre, flag
    # plain transformer_lm is its dataclass, not base_lm_architecture: post-LN as fairseq builds it
    argv = [str(data["lm"]), "--user-dir", USER_DIR, "--task", "language_modeling", "--arch", "sigma_transformer_lm",
            "--decoder-layers", "1", "--decoder-embed-dim", "32", "--cpu"]
    args = options.parse_args_and_arch(options.get_training_parser(), argv)
    model = tasks.setup_task(args).build_model(args)
    assert model.decoder.layers[0].normalize_before is False and model.decoder.layer_norm is None


@pytest.mark.slow
@pytest.mark.parametrize("name", ["transformer", "transformer_lm"])
def test_import_finetune_export_and_stock_fairseq_reads_it(name, data, tmp_path):
    """The way back: stock checkpoint -> twin fine-tune -> sigma-export -> stock fairseq-generate /
    fairseq-eval-lm (no --user-dir) scores exactly what the twin scores."""
    family = FAMILIES[name]
    run(family.train_cmd(data, tmp_path / "stock", twin=False))
    run(family.train_cmd(data, tmp_path / "ft", True, 3, "--finetune-from-model",
                         str(tmp_path / "stock" / "checkpoint_last.pt")))
    exported = tmp_path / "stock_again.pt"
    run([str(BIN / "sigma-export"), str(tmp_path / "ft" / "checkpoint_last.pt"), str(exported)])
    if name == "transformer_lm":
        common = [str(BIN / "fairseq-eval-lm"), str(data["lm"]), "--cpu", "--tokens-per-sample", "32",
                  "--max-tokens", "512", "--gen-subset", "valid"]
        pattern = r"Perplexity: (\S+)"
    else:
        common = [str(BIN / "fairseq-generate"), str(data["mt"]), "--cpu", "--beam", "2", "--gen-subset", "valid",
                  "--required-batch-size-multiple", "1"]
        pattern = r"BLEU4? = (\S+)|Generate valid with beam=2: (.*)"
    plugin = run(common + ["--path", str(tmp_path / "ft" / "checkpoint_last.pt"), "--user-dir", USER_DIR])
    stock = run(common + ["--path", str(exported)])
    found = [re.search(pattern, r.stdout + r.stderr) for r in (plugin, stock)]
    assert all(found) and found[0].group(0) == found[1].group(0)
    if name == "transformer":
        hyps = [sorted(line for line in r.stdout.splitlines() if line.startswith(("H-", "P-"))) for r in (plugin, stock)]
        assert hyps[0] and hyps[0] == hyps[1]


def test_a_model_without_torch_linear_layers_is_refused_in_one_line():
    """Model-parallel or HuggingFace layers are not nn.Linear: σReparam would silently do nothing."""
    import argparse
    from torch import nn
    from sigma_plugin.models.sigma_flags import SigmaOptionError, set_sigma_defaults
    from sigma_plugin.models.sigma_options import apply_sigma_options

    class Foreign(nn.Module):  # a weight held outside any nn.Linear/Conv
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(4, 4))

    args = argparse.Namespace()
    set_sigma_defaults(args)
    with pytest.raises(SigmaOptionError, match="sigma_foreign: --sigma-reparam all found no torch Linear/Conv"):
        apply_sigma_options(Foreign(), args, "sigma_foreign")


def test_a_stock_checkpoint_trained_with_activation_checkpointing_imports(data, tmp_path):
    """--checkpoint-activations is refused for σReparam training, but a stock model trained with it
    imports (switched off on import) and sigma-twin leaves it out of the command, saying why."""
    family = FAMILIES["transformer_lm"]
    run(family.train_cmd(data, tmp_path / "stock", False, 1, "--checkpoint-activations"))
    printed = run([str(BIN / "sigma-twin"), str(tmp_path / "stock" / "checkpoint_last.pt"), str(data["lm"]),
                   "--verify"]).stdout
    assert re.search(r"max \|Δ log-prob\| = 0 on valid", printed), printed
    assert "# checkpoint_activations=True left out: σReparam refuses it" in printed
    assert "--checkpoint-activations" not in printed
