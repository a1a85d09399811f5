"""Validation of the --sigma-* model flags (and of fairseq's precision flags on CPU), and their
translation into fairseq's own options."""
import argparse
import logging
import math

import torch

from sigma_plugin.nn.parametrization import validate_gamma_init

from .sigma_flags import SigmaModelConfig, SigmaOptionError, set_sigma_defaults

logger = logging.getLogger(__name__)

# most specific first: fairseq sets fp16 too for --bf16 and the --memory-efficient-* flags
_LOW_PRECISION_FLAGS = ("memory_efficient_bf16", "memory_efficient_fp16", "bf16", "fp16", "amp")


def check_precision_flags(args, resolved_only: bool = False) -> None:
    """fairseq's fp16/bf16/AMP training needs CUDA: refuse it on CPU at start-up. Called by the
    sigma criteria (training only: a checkpoint trained with --fp16 on a GPU still loads for
    decoding on a CPU)."""
    def flag(name):
        value = getattr(args, name, False)
        return value is True if resolved_only else bool(value)
    on_cpu = flag("cpu") or not torch.cuda.is_available()
    used = [f for f in _LOW_PRECISION_FLAGS if flag(f)]
    if on_cpu and used:
        flag = "--" + used[0].replace("_", "-")
        where = "with --cpu" if getattr(args, "cpu", False) else "without a CUDA GPU"
        raise SigmaOptionError(f"{flag} is not supported {where}: fairseq's fp16/bf16/AMP training needs CUDA; "
                               f"on CPU only fp32 training is supported (drop {flag})")


# fairseq's LayerNorm-placement switches (True = pre-LN): MT/LM/BART/RoBERTa/S2T, wav2vec2
LAYERNORM_SWITCHES = ("encoder_normalize_before", "decoder_normalize_before", "layer_norm_first")


def prepare_sigma_args(args, config: type = SigmaModelConfig) -> None:
    """Validate the --sigma-* flags, refuse what σReparam cannot run under, and translate
    --sigma-layernorm into the model's own switches (after the arch function ran: it may have
    hard-coded them, e.g. fairseq's ``base_lm_architecture`` sets pre-LN).

    Called before the model is built; raises SigmaOptionError naming the offending flag.
    """
    set_sigma_defaults(args, config)
    try:
        _check_sigma_args(args)
        refuse_unsafe_flags(args)
    except SigmaOptionError:
        raise
    except ValueError as e:
        raise SigmaOptionError(str(e)) from None
    if args.sigma_layernorm != "stock":
        pre = args.sigma_layernorm == "pre"
        for switch in layernorm_switches(args):
            if bool(getattr(args, switch)) != pre:
                if not pre and _set_on_command_line(args, switch):
                    raise SigmaOptionError(f"--{switch.replace('_', '-')} conflicts with --sigma-layernorm "
                                           f"{args.sigma_layernorm}; use --sigma-layernorm pre")
                logger.info("--sigma-layernorm %s: %s set to %s (the arch or the command line had %s)",
                            args.sigma_layernorm, switch, pre, getattr(args, switch))
            setattr(args, switch, pre)


def _set_on_command_line(args, switch) -> bool:
    """A switch that is on in a command-line namespace and that no arch function turned on (the twin
    arch functions record the ones the stock arch turned on; the hand-written archs only fill in
    switches that are absent, off unless --sigma-layernorm pre)."""
    return isinstance(args, argparse.Namespace) and switch not in getattr(args, "_sigma_arch_switches", ())


def record_arch_switches(args, stock_arch_fn) -> None:
    """Run a stock arch function and note the LayerNorm switches it turned on (see above)."""
    before = {s: getattr(args, s, None) for s in LAYERNORM_SWITCHES}
    stock_arch_fn(args)
    turned_on = [s for s in LAYERNORM_SWITCHES if getattr(args, s, None) and not before[s]]
    if turned_on and isinstance(args, argparse.Namespace):
        args._sigma_arch_switches = sorted(set(getattr(args, "_sigma_arch_switches", ())) | set(turned_on))


def preset_layernorm_switches(args, config: type) -> None:
    """For a family whose --sigma-layernorm default is not 'stock' (post-LN speech models): before
    a stock arch function runs, set the encoder/decoder switches it would otherwise default to
    pre-LN, from --sigma-layernorm (switches given on the command line are kept)."""
    placement = str(getattr(args, "sigma_layernorm", config.__dataclass_fields__["sigma_layernorm"].default))
    if placement == "stock":
        return
    for switch in ("encoder_normalize_before", "decoder_normalize_before"):
        if not hasattr(args, switch):
            setattr(args, switch, placement == "pre")


def layernorm_switches(args):
    """The LayerNorm-placement switches this model's configuration has."""
    return [s for s in LAYERNORM_SWITCHES if _has(args, s)]


def is_pre_ln(args) -> bool:
    """The placement --sigma-layernorm gives (pre-LN when any switch of the model says so)."""
    if args.sigma_layernorm != "stock":
        return args.sigma_layernorm == "pre"
    return any(bool(getattr(args, s)) for s in layernorm_switches(args))


def _has(args, name) -> bool:
    try:
        return hasattr(args, name) and getattr(args, name) is not None
    except Exception:  # an omegaconf interpolation that does not resolve here
        return False


def _flag_value(args, name, default=None):
    try:
        return getattr(args, name, default)
    except Exception:  # an unresolved interpolation (a config built outside fairseq-train)
        return default


def refuse_unsafe_flags(args) -> None:
    """fairseq options under which a σReparam weight would silently compute something else."""
    if args.sigma_reparam == "none":
        return
    for flag, why in (
            ("checkpoint_activations", "the layer forward runs again in the backward pass, which advances "
                                       "σReparam's power iteration a second time and rebuilds a different W_hat"),
            ("offload_activations", "it implies --checkpoint-activations: the layer forward runs again in the "
                                    "backward pass and advances σReparam's power iteration a second time")):
        if _flag_value(args, flag, False):
            raise SigmaOptionError(f"--{flag.replace('_', '-')} is not supported with σReparam: {why}. Drop it "
                                   f"(or use --sigma-reparam none)")
    for flag in ("quant_noise_pq", "quant_noise_scalar"):
        if (_flag_value(args, flag, 0) or 0) > 0:
            raise SigmaOptionError(f"--{flag.replace('_', '-')} is not supported with σReparam: quant-noise writes "
                                   f"into the weight tensor, which σReparam computes anew from W on every "
                                   f"forward (the noise would be lost). Set it to 0")
    if _flag_value(args, "ddp_backend", None) == "fully_sharded":
        raise SigmaOptionError("--ddp-backend fully_sharded is not supported with σReparam: FSDP wraps the layers "
                               "while the model is built, before σReparam can be applied. Use --ddp-backend "
                               "c10d or legacy_ddp")
    if _flag_value(args, "store_ema", False):
        raise SigmaOptionError("--store-ema is not supported with σReparam: the EMA would average the power "
                               "iteration's unit vector u like a weight (no longer a unit vector). Drop "
                               "--store-ema")


def _check_sigma_args(args) -> None:
    if str(args.sigma_reparam) not in ("all", "attention", "none"):
        raise ValueError(f"--sigma-reparam must be all, attention or none, got {args.sigma_reparam!r}")
    if str(args.sigma_layernorm) not in ("stock", "post", "pre", "none"):
        raise ValueError(f"--sigma-layernorm must be stock, post, pre or none, got {args.sigma_layernorm!r}")
    if args.sigma_layernorm in ("post", "pre") and not layernorm_switches(args):
        raise ValueError(f"--sigma-layernorm {args.sigma_layernorm}: this model has no LayerNorm-placement "
                         f"switch ({', '.join(LAYERNORM_SWITCHES)}); use --sigma-layernorm stock")
    if not isinstance(args.sigma_power_iterations, int) or args.sigma_power_iterations < 1:
        raise ValueError(f"--sigma-power-iterations must be >= 1, got {args.sigma_power_iterations!r}")
    parse_gamma_init(args.sigma_gamma_init)
    if not isinstance(args.sigma_reparam_output, bool) or not isinstance(args.sigma_deepnorm, bool):
        raise ValueError("--sigma-reparam-output and --sigma-deepnorm are switches without a value")
    scale = args.sigma_init_scale
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"--sigma-init-scale must be a positive number, got {scale!r}")
    if args.sigma_deepnorm:
        if args.sigma_layernorm in ("pre", "none") or is_pre_ln(args):
            placement = args.sigma_layernorm if args.sigma_layernorm != "stock" else "stock (pre-LN here)"
            raise ValueError(f"--sigma-deepnorm is a post-LN method; it cannot be combined with "
                             f"--sigma-layernorm {placement}")
        if args.sigma_reparam != "none" and parse_gamma_init(args.sigma_gamma_init) != "sigma0":
            raise ValueError("--sigma-deepnorm with σReparam needs --sigma-gamma-init sigma0: another γ₀ "
                             "would undo DeepNorm's β-scaled initialisation")
    if args.sigma_reparam_output and args.sigma_reparam == "none":
        raise ValueError("--sigma-reparam-output needs --sigma-reparam all or attention (it is 'none')")
    if args.sigma_reparam_output and (getattr(args, "share_decoder_input_output_embed", False)
                                      or getattr(args, "share_all_embeddings", False)):
        raise ValueError("--sigma-reparam-output cannot reparametrize an output projection tied to the "
                         "embeddings: drop --share-decoder-input-output-embed/--share-all-embeddings")


def parse_gamma_init(value):
    """'sigma0', 'one', 'C*sigma0' (returned as strings) or a positive number."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
        return float(value)
    if value in ("sigma0", "one"):
        return value
    try:
        validate_gamma_init(value)
    except ValueError:
        raise ValueError(f"--sigma-gamma-init must be 'sigma0', 'one', 'C*sigma0' (e.g. 0.35*sigma0) or a "
                         f"positive number, got {value!r}") from None
    return value if "*" in str(value) else float(value)
