"""sigma_transformer inside fairseq: training, generation under weights_only loading, flags."""
import json
import subprocess
import sys

import pytest
import torch

from _toy_mt import BIN, USER_DIR, binarize, build_model, run, train_args, write_toy_corpus
from sigma_plugin.nn import get_sigma_reparam, sigma_reparam_modules


@pytest.fixture(scope="module")
def toy_bin(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy")
    write_toy_corpus(folder)
    return binarize(folder)


def json_lines(text, tag):
    return [json.loads(line.split(f"| {tag} | ")[1]) for line in text.splitlines() if f"| {tag} | " in line]


def test_train_then_generate_loads_with_weights_only(toy_bin, tmp_path):
    res = run(train_args(toy_bin, tmp_path / "ckpt", "--sigma-entropy-alarm", "0.001", "--sigma-entropy-alarm-stop"))
    inner = json_lines(res.stdout + res.stderr, "train_inner")
    assert inner and {"ent_enc_self_mean", "ent_dec_cross_min", "gamma_mean", "entropy_alarms"} <= set(inner[-1])
    assert float(inner[-1]["entropy_alarms"]) == 0
    ckpt = tmp_path / "ckpt" / "checkpoint_best.pt"
    # The checkpoint really needs the allowlist: torch's default weights_only load refuses it ...
    plain = subprocess.run([sys.executable, "-c", f"import torch; torch.load({str(ckpt)!r})"],
                           capture_output=True, text=True)
    assert plain.returncode != 0 and "Weights only load failed" in plain.stderr
    # ... and fairseq-generate with the plugin loads it with weights_only still on.
    gen = run([str(BIN / "fairseq-generate"), str(toy_bin), "--user-dir", USER_DIR, "--path", str(ckpt),
               "--beam", "2", "--cpu", "--max-tokens", "500"])
    hyps = [l for l in gen.stdout.splitlines() if l.startswith("H-")]
    assert hyps and f"Translated {len(hyps)} sentences" in gen.stderr
    # loading takes u from the checkpoint: no SVD anywhere (model build included)
    from fairseq import checkpoint_utils
    import sigma_plugin
    sigma_plugin.register()

    def refuse(*args, **kwargs):
        raise AssertionError("SVD called while loading a checkpoint")
    saved = torch.load(str(ckpt), weights_only=True)["model"]
    from sigma_plugin.nn.parametrization import _SigmaReparam
    with pytest.MonkeyPatch.context() as mp:
        for mod, name in ((torch.linalg, "svd"), (torch.linalg, "svdvals"), (torch, "svd"), (torch, "svd_lowrank")):
            mp.setattr(mod, name, refuse)
        mp.setattr(_SigmaReparam, "_initialise", refuse)  # nor the power-iteration initialisation
        models, _ = checkpoint_utils.load_model_ensemble([str(ckpt)])
    loaded = dict(models[0].state_dict())
    assert all(torch.equal(loaded[k], v) for k, v in saved.items() if k.endswith(".u"))


def test_default_model_reparametrizes_all_layer_linears_not_embeddings(toy_bin):
    _, model, _ = build_model(toy_bin)
    names = [n for n, _, _ in sigma_reparam_modules(model)]
    # 2 encoder layers × (4 attention + 2 FFN) + 2 decoder layers × (8 attention + 2 FFN)
    assert len(names) == 2 * 6 + 2 * 10
    assert not any("output_projection" in n or "embed" in n for n in names)
    assert model.encoder.layers[0].normalize_before is False  # post-LN by default


def test_function_unchanged_by_conversion(toy_bin):
    """Same seed → same initial weights; σReparam with γ₀ = σ₀ must not change the model's output."""
    _, plain, _ = build_model(toy_bin, "--sigma-reparam", "none", "--seed", "3")
    _, conv, _ = build_model(toy_bin, "--seed", "3")
    src, prev = torch.randint(4, 40, (2, 7)), torch.randint(4, 40, (2, 5))
    plain.eval(), conv.eval()
    with torch.no_grad():
        a = plain(src, torch.tensor([7, 7]), prev)[0]
        b = conv(src, torch.tensor([7, 7]), prev)[0]
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("flags,check", [
    (["--sigma-reparam", "attention"], lambda m: get_sigma_reparam(m.encoder.layers[0].fc1) is None
     and get_sigma_reparam(m.encoder.layers[0].self_attn.q_proj) is not None),
    (["--sigma-layernorm", "pre"], lambda m: m.encoder.layers[0].normalize_before and m.encoder.layer_norm is not None),
    (["--sigma-layernorm", "none"], lambda m: isinstance(m.encoder.layers[0].final_layer_norm, torch.nn.Identity)
     and isinstance(m.decoder.layers[1].encoder_attn_layer_norm, torch.nn.Identity)),
    (["--sigma-gamma-init", "one"], lambda m: get_sigma_reparam(m.encoder.layers[0].fc1).gamma.item() == 1.0),
    (["--sigma-gamma-init", "0.5*sigma0"], lambda m: abs(get_sigma_reparam(m.encoder.layers[0].fc1).gamma.item()
     - 0.5 * get_sigma_reparam(m.encoder.layers[0].fc1).sigma0) < 1e-6),
    (["--sigma-power-iterations", "3"], lambda m: get_sigma_reparam(m.encoder.layers[0].fc1).n_power_iterations == 3),
    (["--sigma-deepnorm", "--sigma-reparam", "none"], lambda m: abs(m.encoder.layers[0].deepnorm_alpha
     - 0.81 * (2 ** 4 * 2) ** (1 / 16)) < 1e-9 and abs(m.decoder.layers[0].deepnorm_alpha - 6 ** 0.25) < 1e-9),
    (["--sigma-exclude", "decoder.layers.*"], lambda m: get_sigma_reparam(m.decoder.layers[0].fc1) is None
     and get_sigma_reparam(m.encoder.layers[0].fc1) is not None),
])
def test_flags(toy_bin, flags, check):
    _, model, _ = build_model(toy_bin, *flags)
    assert check(model)


def test_init_scale_matches_scaled_gamma_at_initialisation(toy_bin):
    """Plain weights scaled by C and σReparam with γ₀ = C·σ₀ compute the same function at init;
    the output projection is left as it is."""
    _, plain, _ = build_model(toy_bin, "--sigma-reparam", "none", "--sigma-init-scale", "0.3", "--seed", "3")
    _, unscaled, _ = build_model(toy_bin, "--sigma-reparam", "none", "--seed", "3")
    _, sigma, _ = build_model(toy_bin, "--sigma-gamma-init", "0.3*sigma0", "--seed", "3")
    torch.testing.assert_close(plain.encoder.layers[0].fc1.weight, 0.3 * unscaled.encoder.layers[0].fc1.weight)
    src, prev = torch.randint(4, 40, (2, 7)), torch.randint(4, 40, (2, 5))
    for m in (plain, unscaled, sigma):
        m.eval()
    with torch.no_grad():
        a = plain(src, torch.tensor([7, 7]), prev)[0]
        b = sigma(src, torch.tensor([7, 7]), prev)[0]
        c = unscaled(src, torch.tensor([7, 7]), prev)[0]
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    assert (a - c).abs().max() > 1e-3


def test_deepnorm_residual_is_scaled(toy_bin):
    _, model, _ = build_model(toy_bin, "--sigma-deepnorm", "--sigma-reparam", "none")
    layer = model.encoder.layers[0]
    x, r = torch.ones(2), torch.full((2,), 2.0)
    assert torch.allclose(layer.residual_connection(x, r), r * layer.deepnorm_alpha + x)


def test_deepnorm_model_pickles(toy_bin, tmp_path):
    """DeepNorm layers and the decoder are module-level classes: a DeepNorm model survives
    torch.save / torch.load of the whole model (the plain DeepNorm baseline: torch pickles
    σReparam's parametrized modules only through state_dict) and copy.deepcopy (with σReparam
    too), computing the same function."""
    import copy
    from sigma_plugin.models.deepnorm import DeepNormDecoderLayer, DeepNormEncoderLayer
    _, plain, _ = build_model(toy_bin, "--sigma-deepnorm", "--sigma-reparam", "none")
    _, sigma, _ = build_model(toy_bin, "--sigma-deepnorm")
    assert type(sigma.encoder.layers[0]) is DeepNormEncoderLayer
    assert type(sigma.decoder.layers[0]) is DeepNormDecoderLayer
    torch.save(plain, tmp_path / "model.pt")
    src, prev = torch.randint(4, 40, (2, 7)), torch.randint(4, 40, (2, 5))
    for model, other in ((plain, torch.load(tmp_path / "model.pt", weights_only=False)),  # our own file
                         (plain, copy.deepcopy(plain)), (sigma, copy.deepcopy(sigma))):
        model.eval(), other.eval()
        assert other.encoder.layers[1].deepnorm_alpha == model.encoder.layers[1].deepnorm_alpha
        with torch.no_grad():
            torch.testing.assert_close(other(src, torch.tensor([7, 7]), prev)[0],
                                       model(src, torch.tensor([7, 7]), prev)[0])


@pytest.mark.parametrize("flags,message", [
    (["--sigma-deepnorm", "--sigma-layernorm", "pre"], "--sigma-deepnorm is a post-LN method"),
    (["--sigma-deepnorm", "--sigma-gamma-init", "one"], "needs --sigma-gamma-init sigma0"),
    (["--sigma-layernorm", "post", "--encoder-normalize-before"], "--encoder-normalize-before conflicts"),
    (["--sigma-gamma-init", "-3"], "--sigma-gamma-init must be"),
    (["--sigma-power-iterations", "0"], "--sigma-power-iterations must be >= 1"),
    (["--sigma-gamma-init", "2*sigma1"], "--sigma-gamma-init must be"),
    (["--sigma-init-scale", "0"], "--sigma-init-scale must be a positive number"),
    (["--sigma-reparam-output"], "tied to the embeddings"),
    (["--sigma-exclude", "nothing"], "--sigma-exclude pattern 'nothing' matches no Linear/Conv module"),
    (["--sigma-exclude", "encoder.layers.*,decoder.layer.*"], "pattern 'decoder.layer.\\*' matches no"),
    (["--sigma-reparam", "none", "--sigma-init-scale", "0.5", "--sigma-exclude", "fc9"], "'fc9' matches no"),
])
def test_incompatible_flags_fail_at_startup(toy_bin, flags, message):
    with pytest.raises(ValueError, match=message):
        build_model(toy_bin, *flags)


def test_100_layer_encoder_decoder_builds_and_steps(toy_bin, tmp_path):
    res = run(train_args(toy_bin, tmp_path / "deep", "--encoder-layers", "100", "--decoder-layers", "100",
                         "--encoder-embed-dim", "32", "--encoder-ffn-embed-dim", "32",
                         "--max-tokens", "200", "--no-save", "--sigma-log-summary-only",
                         max_update=1))
    inner = json_lines(res.stdout + res.stderr, "train")
    assert inner and float(inner[-1]["train_loss"]) > 0 and "train_ent_dec_self_min" in inner[-1]


def test_log_lines_between_probes_carry_no_empty_metrics(toy_bin, tmp_path):
    res = run(train_args(toy_bin, tmp_path / "c", "--log-interval", "1", "--sigma-log-interval", "2", "--no-save",
                         max_update=4))
    text = res.stdout + res.stderr
    inner = json_lines(text, "train_inner")
    with_entropy = [int(l["num_updates"]) for l in inner if "ent_enc_self_mean" in l]
    assert with_entropy == [1, 3]  # probed at updates 0 and 2, logged once they finished
    assert "null" not in "".join(l for l in text.splitlines() if "| train_inner |" in l)


def _losses_and_state(res, ckpt):
    import sigma_plugin
    sigma_plugin.register()
    lines = json_lines(res.stdout + res.stderr, "train_inner")
    losses = [(l["num_updates"], l["loss"]) for l in lines]
    return losses, torch.load(str(ckpt), weights_only=True)["model"]


def test_log_interval_does_not_change_training(toy_bin, tmp_path):
    """Probing (entropy logging) reads q/k weights without advancing σReparam's power iteration:
    runs that differ only in --sigma-log-interval follow the same trajectory, bit for bit."""
    runs = {}
    for interval in ("1", "3"):
        res = run(train_args(toy_bin, tmp_path / interval, "--log-interval", "1", "--sigma-log-interval", interval,
                             "--no-epoch-checkpoints", max_update=6))
        runs[interval] = _losses_and_state(res, tmp_path / interval / "checkpoint_last.pt")
    (loss_a, state_a), (loss_b, state_b) = runs["1"], runs["3"]
    assert len(loss_a) == 6 and loss_a == loss_b
    assert state_a.keys() == state_b.keys() and any(k.endswith(".u") for k in state_a)
    different = [k for k in state_a if not torch.equal(state_a[k], state_b[k])]
    assert not different, different[:5]


def test_beam_search_computes_each_weight_once_per_batch(toy_bin, monkeypatch):
    """In eval, W_hat is recomputed on every access (never stale) except within one incremental
    decoding, where each σReparam weight is computed once; the hypotheses are the same."""
    from fairseq.sequence_generator import SequenceGenerator
    from sigma_plugin.models.decoding_cache import DecodingCache
    from sigma_plugin.nn.parametrization import _SigmaReparam
    task, model, _ = build_model(toy_bin, "--seed", "2")
    model.eval()
    task.load_dataset("valid")
    ds = task.dataset("valid")
    sample = ds.collater([ds[i] for i in range(4)])
    calls = []
    real = _SigmaReparam._sigma
    monkeypatch.setattr(_SigmaReparam, "_sigma", lambda self, *a, **k: (calls.append(id(self)), real(self, *a, **k))[1])
    gen = SequenceGenerator([model], task.target_dictionary, beam_size=2, max_len_b=12)
    cached = gen.generate([model], sample)
    n_weights = len(list(sigma_reparam_modules(model)))
    assert len(calls) == n_weights == len(set(calls))
    calls.clear()
    monkeypatch.setattr(DecodingCache, "forward",
                        lambda self, *a, incremental_state=None, **k:
                        super(DecodingCache, self).forward(*a, incremental_state=incremental_state, **k))
    uncached = gen.generate([model], sample)
    assert len(calls) > 3 * n_weights  # every decoder step recomputes
    assert [[h["tokens"].tolist() for h in hs] for hs in cached] == [[h["tokens"].tolist() for h in hs] for hs in uncached]


def test_model_with_fp16_training_args_still_builds_on_cpu(toy_bin):
    """fp16/bf16/AMP are refused by the sigma criteria at the start of CPU training
    (tests/test_flag_errors.py); a model whose stored training arguments carry --fp16 (trained on
    a GPU) still builds on a CPU, for fairseq-generate."""
    _, model, args = build_model(toy_bin, "--fp16")
    assert args.fp16 and len(list(sigma_reparam_modules(model))) == 32


def test_decoder_cache_with_positional_incremental_state(toy_bin, monkeypatch):
    from sigma_plugin.nn.parametrization import _SigmaReparam
    _, model, _ = build_model(toy_bin, "--seed", "2")
    model.eval()
    calls = []
    real = _SigmaReparam._sigma
    monkeypatch.setattr(_SigmaReparam, "_sigma", lambda self, *a, **k: (calls.append(id(self)), real(self, *a, **k))[1])
    src, prev = torch.randint(4, 40, (2, 5)), torch.randint(4, 40, (2, 4))
    with torch.no_grad():
        enc = model.encoder(src, torch.tensor([5, 5]))
        calls.clear()
        state = {}
        outs = [model.decoder(prev[:, :t], enc, state)[0] for t in range(1, 5)]
        assert len(calls) == len(list(sigma_reparam_modules(model.decoder))) == len(set(calls))
        full = model.decoder(prev, enc)[0]  # no incremental state: recomputed, the same numbers
    torch.testing.assert_close(torch.cat(outs, 1), full, rtol=1e-4, atol=1e-4)


def test_generation_folds_sigma_reparam_into_plain_weights(toy_bin):
    """fairseq-generate calls prepare_for_inference_, which ends training: the sigma_* models fold
    every W_hat into a plain weight there, so decoding costs what a stock model's does; the
    hypotheses and scores are those of the σReparam model."""
    from types import SimpleNamespace
    from fairseq.sequence_generator import SequenceGenerator
    from torch.nn.utils import parametrize
    task, model, _ = build_model(toy_bin, "--seed", "3")
    model.eval()
    task.load_dataset("valid")
    ds = task.dataset("valid")
    sample = ds.collater([ds[i] for i in range(4)])
    gen = SequenceGenerator([model], task.target_dictionary, beam_size=2, max_len_b=12)
    before = gen.generate([model], sample)
    n_weights = len(list(sigma_reparam_modules(model)))
    assert n_weights == 32
    model.prepare_for_inference_(SimpleNamespace(generation=SimpleNamespace(beam=2)))
    assert not list(sigma_reparam_modules(model))
    assert not any(parametrize.is_parametrized(m) for m in model.modules())
    after = gen.generate([model], sample)
    assert [[h["tokens"].tolist() for h in hs] for hs in before] == [[h["tokens"].tolist() for h in hs] for hs in after]
    for hs_b, hs_a in zip(before, after):
        for hb, ha in zip(hs_b, hs_a):
            torch.testing.assert_close(hb["score"], ha["score"], rtol=1e-5, atol=1e-5)
    with pytest.raises(RuntimeError, match="cannot train"):
        model.train()


def _valid_sample(task, n=4):
    task.load_dataset("valid")
    ds = task.dataset("valid")
    return ds.collater([ds[i] for i in range(n)])


def test_training_forward_rebuilds_w_hat_in_backward(toy_bin, weight_hats_made):
    """A training forward of a sigma_* model keeps no W_hat for the backward pass (the memory of
    a stock model) and computes the same loss and gradients as one that keeps them."""
    import copy
    from fairseq.models.transformer import TransformerModel
    task, model, _ = build_model(toy_bin, "--seed", "4")
    model.train()
    twin = copy.deepcopy(model)
    sample = _valid_sample(task)
    made = weight_hats_made
    torch.manual_seed(0)
    out = model(**sample["net_input"])[0]
    assert len(made) >= 32 and all(ref() is None for ref in made)
    made.clear()
    torch.manual_seed(0)
    kept = TransformerModel.forward(twin, **sample["net_input"])[0]  # the stock forward: W_hat kept
    assert all(ref() is not None for ref in made)
    assert torch.equal(out, kept)
    out.float().pow(2).mean().backward()
    kept.float().pow(2).mean().backward()
    for (name, a), (_, b) in zip(model.named_parameters(), twin.named_parameters()):
        assert (a.grad is None) == (b.grad is None) and (a.grad is None or torch.equal(a.grad, b.grad)), name


def test_keep_weights_flag_keeps_w_hat_for_backward(toy_bin, weight_hats_made):
    task, model, args = build_model(toy_bin, "--seed", "4", "--sigma-keep-weights")
    assert args.sigma_keep_weights
    model.train()
    sample = _valid_sample(task)
    made = weight_hats_made
    out = model(**sample["net_input"])[0]
    assert len(made) >= 32 and all(ref() is not None for ref in made)
    out.float().pow(2).mean().backward()
