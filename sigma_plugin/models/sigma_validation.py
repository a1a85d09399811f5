"""Validation of the --sigma-* model flags (and of fairseq's precision flags on CPU), and their
translation into fairseq's own options."""
import math

import torch

from sigma_plugin.nn.sigma_reparam import validate_gamma_init

from .sigma_flags import SigmaOptionError, set_sigma_defaults

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


def prepare_sigma_args(args) -> None:
    """Validate the --sigma-* flags and translate them into fairseq's own options.

    Called before the model is built; raises SigmaOptionError naming the offending flag.
    """
    set_sigma_defaults(args)
    try:
        _check_sigma_args(args)
    except SigmaOptionError:
        raise
    except ValueError as e:
        raise SigmaOptionError(str(e)) from None
    pre = args.sigma_layernorm == "pre"
    for side in ("encoder", "decoder"):
        setattr(args, f"{side}_normalize_before", pre)


def _check_sigma_args(args) -> None:
    if str(args.sigma_reparam) not in ("all", "attention", "none"):
        raise ValueError(f"--sigma-reparam must be all, attention or none, got {args.sigma_reparam!r}")
    if str(args.sigma_layernorm) not in ("post", "pre", "none"):
        raise ValueError(f"--sigma-layernorm must be post, pre or none, got {args.sigma_layernorm!r}")
    if not isinstance(args.sigma_power_iterations, int) or args.sigma_power_iterations < 1:
        raise ValueError(f"--sigma-power-iterations must be >= 1, got {args.sigma_power_iterations!r}")
    parse_gamma_init(args.sigma_gamma_init)
    if not isinstance(args.sigma_reparam_output, bool) or not isinstance(args.sigma_deepnorm, bool):
        raise ValueError("--sigma-reparam-output and --sigma-deepnorm are switches without a value")
    scale = args.sigma_init_scale
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"--sigma-init-scale must be a positive number, got {scale!r}")
    if args.sigma_deepnorm:
        if args.sigma_layernorm != "post":
            raise ValueError(f"--sigma-deepnorm is a post-LN method; it cannot be combined with "
                             f"--sigma-layernorm {args.sigma_layernorm}")
        if args.sigma_reparam != "none" and parse_gamma_init(args.sigma_gamma_init) != "sigma0":
            raise ValueError("--sigma-deepnorm with σReparam needs --sigma-gamma-init sigma0: another γ₀ "
                             "would undo DeepNorm's β-scaled initialisation")
    if args.sigma_reparam_output and args.sigma_reparam == "none":
        raise ValueError("--sigma-reparam-output needs --sigma-reparam all or attention (it is 'none')")
    if args.sigma_reparam_output and (getattr(args, "share_decoder_input_output_embed", False)
                                      or getattr(args, "share_all_embeddings", False)):
        raise ValueError("--sigma-reparam-output cannot reparametrize an output projection tied to the "
                         "embeddings: drop --share-decoder-input-output-embed/--share-all-embeddings")
    pre = args.sigma_layernorm == "pre"
    for side in ("encoder", "decoder"):
        flag = f"{side}_normalize_before"
        if getattr(args, flag, False) and not pre:
            raise ValueError(f"--{flag.replace('_', '-')} conflicts with --sigma-layernorm "
                             f"{args.sigma_layernorm}; use --sigma-layernorm pre")


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
