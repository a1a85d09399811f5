"""sigma_s2t_transformer / sigma_s2t_ctc and the sigma_ctc_attention / sigma_ctc criteria, in-process."""
import pytest
import torch

import sigma_plugin
from _asr_corpus import prepare, write_corpus
from sigma_plugin.models.introspection import attention_modules
from sigma_plugin.nn import sigma_reparam_modules

USER_DIR = str(__import__("pathlib").Path(__file__).resolve().parents[1] / "sigma_plugin")


@pytest.fixture(scope="module")
def dump(tmp_path_factory):
    root = write_corpus(tmp_path_factory.mktemp("corpus"))
    return prepare(root, tmp_path_factory.mktemp("dump"))


def build(dump, arch, *extra, criterion="sigma_ctc_attention"):
    from fairseq import options, tasks
    sigma_plugin.register()
    argv = [str(dump), "--user-dir", USER_DIR, "--task", "speech_to_text", "--arch", arch,
            "--criterion", criterion, "--cpu", "--seed", "1", *extra]
    args = options.parse_args_and_arch(options.get_training_parser(), argv)
    task = tasks.setup_task(args)
    task.load_dataset("train-tone")
    torch.manual_seed(1)
    model = task.build_model(args)
    ds = task.dataset("train-tone")
    return task, model, task.build_criterion(args), ds.collater([ds[i] for i in range(4)])


def test_encoder_decoder_defaults_post_ln_all_linears_and_conv(dump):
    _, model, _, _ = build(dump, "sigma_s2t_transformer_tiny", "--sigma-ctc-weight", "0.3")
    enc = model.encoder
    assert len(enc.transformer_layers) == 2 and len(model.decoder.layers) == 1
    assert enc.transformer_layers[0].embed_dim == 64
    assert enc.transformer_layers[0].normalize_before is False and enc.layer_norm is None  # post-LN
    names = {n for n, _, _ in sigma_reparam_modules(model)}
    assert {"encoder.subsample.conv_layers.0", "encoder.subsample.conv_layers.1"} <= names
    # 2 conv + 2 enc layers x 6 linears + 1 dec layer x 10 linears; output layers stay plain
    assert len(names) == 2 + 2 * 6 + 10
    assert enc.ctc_proj is not None and "encoder.ctc_proj" not in names
    assert "decoder.output_projection" not in names
    assert set(attention_modules(model)[0]) == {"enc_self.0", "enc_self.1", "dec_self.0", "dec_cross.0"}


def test_pre_ln_and_no_ctc_head_and_conflicting_flag(dump):
    _, model, _, _ = build(dump, "sigma_s2t_transformer_tiny", "--sigma-layernorm", "pre",
                           "--sigma-reparam", "none", "--sigma-ctc-weight", "0")
    assert model.encoder.transformer_layers[0].normalize_before is True and model.encoder.layer_norm is not None
    assert model.encoder.ctc_proj is None and not list(sigma_reparam_modules(model))
    with pytest.raises(ValueError, match="--encoder-normalize-before conflicts with --sigma-layernorm post"):
        build(dump, "sigma_s2t_transformer_tiny", "--encoder-normalize-before")


def test_conversion_keeps_the_function(dump):
    """γ₀ = σ₀: the σReparam model computes what the plain model with the same weights does."""
    _, plain, _, sample = build(dump, "sigma_s2t_transformer_tiny", "--sigma-reparam", "none")
    _, conv, _, _ = build(dump, "sigma_s2t_transformer_tiny")
    plain.eval(), conv.eval()
    with torch.no_grad():
        a = plain(**sample["net_input"])[0]
        b = conv(**sample["net_input"])[0]
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_joint_loss_is_interpolated_and_logs_entropy(dump):
    _, model, crit, sample = build(dump, "sigma_s2t_transformer_tiny", "--sigma-ctc-weight", "0.25",
                                   "--label-smoothing", "0.1", "--sigma-log-interval", "1")
    model.train()
    model.set_num_updates(0)
    loss, sample_size, log = crit(model, sample)
    assert log["loss"] == pytest.approx(0.25 * log["ctc_loss"] + 0.75 * log["att_loss"], rel=1e-5)
    assert sample_size == sample["ntokens"] and torch.isfinite(loss)
    assert any(k.startswith("sigma/ent/enc_self/") for k in log)
    loss.backward()
    assert model.encoder.ctc_proj.weight.grad is not None
    with pytest.raises(ValueError, match=r"--sigma-ctc-weight must be in \[0, 1\)"):
        build(dump, "sigma_s2t_transformer_tiny", "--sigma-ctc-weight", "1.5")


def test_ctc_model_trains_decodes_and_logs(dump):
    task, model, crit, sample = build(dump, "sigma_s2t_ctc_tiny", "--sigma-log-interval", "1",
                                      criterion="sigma_ctc")
    assert not hasattr(model, "decoder") or model.decoder is None
    names = {n for n, _, _ in sigma_reparam_modules(model)}
    assert len(names) == 2 + 2 * 6 and "encoder.ctc_proj" not in names
    assert model.blank_idx == task.target_dictionary.bos()
    model.train()
    model.set_num_updates(0)
    loss, _, log = crit(model, sample)
    assert torch.isfinite(loss) and any(k.startswith("sigma/ent/enc_self/") for k in log)
    model.eval()
    with torch.no_grad():
        hyps = model.ctc_greedy_decode(model(**sample["net_input"]))
        _, _, val_log = crit(model, sample)
    assert len(hyps) == 4 and all(isinstance(h, list) for h in hyps)
    assert val_log["word_total"] > 0 and val_log["tok_total"] == int(sample["target_lengths"].sum()) - 4


def test_checkpoint_keys_are_stock_s2t_and_old_layout_still_loads(dump, tmp_path):
    """sigma_s2t_* state dicts use fairseq's S2T names (encoder.transformer_layers.*); a checkpoint
    of the earlier layout (encoder layers renamed encoder.layers.*) loads through fairseq's
    upgrade_state_dict_named, for the encoder-decoder and the CTC-only model."""
    from fairseq import checkpoint_utils
    for arch, criterion in (("sigma_s2t_transformer_tiny", "sigma_ctc_attention"), ("sigma_s2t_ctc_tiny", "sigma_ctc")):
        task, model, _, sample = build(dump, arch, criterion=criterion)
        state = model.state_dict()
        assert any(k.startswith("encoder.transformer_layers.0.") for k in state)
        assert not any(k.startswith("encoder.layers.") for k in state)
        # the previous layout, made here: same tensors, encoder layers under encoder.layers.*
        old = {("encoder.layers." + k[len("encoder.transformer_layers."):]
                if k.startswith("encoder.transformer_layers.") else k): v.clone() for k, v in state.items()}
        assert any(k.startswith("encoder.layers.0.") for k in old)
        _, fresh, _, _ = build(dump, arch, criterion=criterion, *("--seed", "7"))
        fresh.load_state_dict(old)  # strict: every key of the old layout finds its place
        for k, v in state.items():
            assert torch.equal(fresh.state_dict()[k], v), k
        # and from a checkpoint file, as fairseq-generate / decode_ctc load it
        ckpt = tmp_path / f"{arch}.pt"
        checkpoint_utils.torch_persistent_save(
            {"args": _saved_args(dump, arch, criterion), "cfg": None, "model": old,
             "optimizer_history": [{"criterion_name": criterion, "optimizer_name": "sgd",
                                    "lr_scheduler_state": {"best": None}, "num_updates": 0}],
             "extra_state": {}, "last_optimizer_state": None}, str(ckpt))
        models, _ = checkpoint_utils.load_model_ensemble([str(ckpt)])
        models[0].eval(), model.eval()
        with torch.no_grad():
            want = model.encoder(sample["net_input"]["src_tokens"], sample["net_input"]["src_lengths"])
            got = models[0].encoder(sample["net_input"]["src_tokens"], sample["net_input"]["src_lengths"])
        torch.testing.assert_close(got["encoder_out"][0], want["encoder_out"][0])


def _saved_args(dump, arch, criterion):
    """The training arguments as a checkpoint keeps them (plain values: weights_only loading)."""
    import argparse
    from fairseq import options
    argv = [str(dump), "--user-dir", USER_DIR, "--task", "speech_to_text", "--arch", arch,
            "--criterion", criterion, "--cpu", "--seed", "1"]
    args = options.parse_args_and_arch(options.get_training_parser(), argv)
    return argparse.Namespace(**{k: v for k, v in vars(args).items()
                                 if v is None or isinstance(v, (str, int, float, bool, list))})


def test_deepnorm_s2t_models_build_pickle_and_train(dump, tmp_path):
    """DeepNorm on the S2T encoder (built without a layer hook) and decoder; the CTC-only model
    uses DeepNet's encoder-only constants α = (2N)^¼, β = (8N)^-¼."""
    import copy
    from sigma_plugin.models.deepnorm import DeepNormDecoderLayer, DeepNormEncoderLayer
    _, model, crit, sample = build(dump, "sigma_s2t_transformer_tiny", "--sigma-deepnorm", "--sigma-ctc-weight", "0.3",
                                   "--sigma-reparam", "none")
    assert all(type(layer) is DeepNormEncoderLayer for layer in model.encoder.transformer_layers)
    assert type(model.decoder.layers[0]) is DeepNormDecoderLayer
    assert model.encoder.transformer_layers[0].deepnorm_alpha == pytest.approx(0.81 * (2 ** 4 * 1) ** (1 / 16))
    # torch.save of a whole model: the plain DeepNorm baseline (torch pickles a σReparam model,
    # whose weights are torch parametrizations, only through its state_dict)
    torch.save(model, tmp_path / "m.pt")
    _, sigma, _, _ = build(dump, "sigma_s2t_transformer_tiny", "--sigma-deepnorm", "--sigma-ctc-weight", "0.3")
    for original, other in ((model, torch.load(tmp_path / "m.pt", weights_only=False)),  # our own file
                            (model, copy.deepcopy(model)), (sigma, copy.deepcopy(sigma))):
        other.eval(), original.eval()
        with torch.no_grad():
            torch.testing.assert_close(other(**sample["net_input"])[0], original(**sample["net_input"])[0])
    _, ctc, crit, sample = build(dump, "sigma_s2t_ctc_tiny", "--sigma-deepnorm", criterion="sigma_ctc")
    assert ctc.encoder.transformer_layers[1].deepnorm_alpha == pytest.approx(4 ** 0.25)
    ctc.train()
    loss, _, _ = crit(ctc, sample)
    assert torch.isfinite(loss)
