"""The `--sigma-*` model flags (defined once here) and how they are applied to a built model.

Shared by every sigma_* model (MT and ASR): the fairseq model classes call
``add_sigma_args`` in ``add_args``, ``prepare_sigma_args`` before building, and
``apply_sigma_options`` on the built model.
"""

import fnmatch
import inspect
import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch
from torch import nn

from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.dataclass.utils import gen_parser_from_dataclass

from sigma_plugin.nn import (apply_sigma_reparam, broadcast_sigma_state, cached_sigma_weights,
                             deferred_sigma_init, is_probeable_attention)
from sigma_plugin.nn.sigma_reparam import SUPPORTED_TYPES, validate_gamma_init

SIGMA_REPARAM_CHOICES = ChoiceEnum(["all", "attention", "none"])
LAYERNORM_CHOICES = ChoiceEnum(["post", "pre", "none"])
# Output layers (vocabulary projections) are left plain unless --sigma-reparam-output.
OUTPUT_LAYER_PATTERNS = ("decoder.output_projection", "*ctc_proj")


class SigmaOptionError(ValueError):
    """A bad flag value or combination. fairseq-train / fairseq-generate stop with this one-line
    message and no traceback (``sigma_plugin.register`` installs the hook); in-process callers
    get an ordinary ValueError."""
    one_line = True


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


@dataclass
class SigmaModelConfig(FairseqDataclass):
    sigma_reparam: SIGMA_REPARAM_CHOICES = field(
        default="all",
        metadata={"help": "which weights get σReparam (W_hat = γ/σ(W)·W): 'all' = every Linear/Conv in "
                          "the model except the output projection (the paper reparametrizes all linear "
                          "layers), 'attention' = only the attention q/k/v/out projections, 'none' = plain "
                          "model (the post-LN / pre-LN baselines)"})
    sigma_reparam_output: bool = field(
        default=False,
        metadata={"help": "also reparametrize the output (vocabulary) projection; off by default because "
                          "the MT presets tie it to the embedding matrix. Needs an untied output projection"})
    sigma_exclude: str = field(
        default="",
        metadata={"help": "comma-separated shell patterns of module names to leave plain, "
                          "e.g. 'encoder.layers.0.*,*.fc2'"})
    sigma_gamma_init: str = field(
        default="sigma0",
        metadata={"help": "initial γ: 'sigma0' (γ₀ = σ(W₀), the converted model computes exactly what the "
                          "plain model did; reference PyTorch code), 'one' (γ₀ = 1, reference JAX speech "
                          "code), 'C*sigma0' (γ₀ = C·σ₀: every branch scaled by C at initialisation, "
                          "e.g. 0.35*sigma0) or a positive number"})
    sigma_init_scale: float = field(
        default=1.0,
        metadata={"help": "multiply the initial weights of every Linear/Conv layer that --sigma-reparam all "
                          "would convert (all but the output projection and --sigma-exclude) by this "
                          "factor; with --sigma-reparam none it is the plain-model contrast to "
                          "--sigma-gamma-init C*sigma0"})
    sigma_power_iterations: int = field(
        default=1, metadata={"help": "power-iteration steps per training forward (≥ 1)"})
    sigma_layernorm: LAYERNORM_CHOICES = field(
        default="post",
        metadata={"help": "LayerNorm placement: 'post' (after the residual add; the paper's setting), "
                          "'pre' (before each sublayer, with a final LayerNorm), or 'none' (no LayerNorm "
                          "at all: the paper's no-LN ablation). Replaces --encoder/decoder-normalize-before"})
    sigma_deepnorm: bool = field(
        default=False,
        metadata={"help": "DeepNorm baseline (Wang et al. 2022, DeepNet): post-LN with residual x·α + f(x) and "
                          "β-scaled Xavier init of FFN/value/output projections, α/β from the encoder-decoder "
                          "formulas. Needs --sigma-layernorm post"})


def add_sigma_args(parser) -> None:
    gen_parser_from_dataclass(parser, SigmaModelConfig())


def set_sigma_defaults(args) -> None:
    """Fill in missing --sigma-* attributes (architecture functions, old checkpoints)."""
    for name, f in SigmaModelConfig.__dataclass_fields__.items():
        if not hasattr(args, name):
            setattr(args, name, f.default)


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


def deepnorm_constants(encoder_layers: int, decoder_layers: int) -> Dict[str, float]:
    """DeepNet (Wang et al. 2022, Table 1) encoder-decoder constants: N encoder, M decoder layers."""
    n, m = encoder_layers, decoder_layers
    consts = {"decoder_alpha": (3 * m) ** 0.25, "decoder_beta": (12 * m) ** -0.25}
    if n > 0:
        consts["encoder_alpha"] = 0.81 * (n ** 4 * m) ** (1 / 16)
        consts["encoder_beta"] = 0.87 * (n ** 4 * m) ** (-1 / 16)
    return consts


class _ScaledResidual:
    """Mixin for fairseq Transformer layers: residual · α + f(x) (DeepNorm's x_{l+1} = LN(αx + f(x)))."""
    deepnorm_alpha: float = 1.0

    def residual_connection(self, x, residual):
        return residual * self.deepnorm_alpha + x


_SCALED_CLASSES: Dict[type, type] = {}


def _enable_scaled_residual(layer: nn.Module, alpha: float) -> None:
    cls = type(layer)
    if cls not in _SCALED_CLASSES:
        _SCALED_CLASSES[cls] = type(f"DeepNorm{cls.__name__}", (_ScaledResidual, cls), {})
    layer.__class__ = _SCALED_CLASSES[cls]
    layer.deepnorm_alpha = alpha


def apply_deepnorm(encoder_layers: List[nn.Module], decoder_layers: List[nn.Module]) -> Dict[str, float]:
    """Residual scaling α and β-scaled Xavier-normal init (DeepNet Algorithm/Fig. 2)."""
    c = deepnorm_constants(len(encoder_layers), len(decoder_layers))
    for side, layers in (("encoder", encoder_layers), ("decoder", decoder_layers)):
        if not layers:
            continue
        alpha, beta = c[f"{side}_alpha"], c[f"{side}_beta"]
        for layer in layers:
            _enable_scaled_residual(layer, alpha)
            for name, mod in layer.named_modules():
                if not isinstance(mod, nn.Linear):
                    continue
                gain = 1.0 if name.endswith(("q_proj", "k_proj")) else beta
                nn.init.xavier_normal_(mod.weight, gain=gain)
    return c


def remove_layernorms(layers: List[nn.Module]) -> int:
    """--sigma-layernorm none: replace every LayerNorm inside the layers by Identity."""
    count = 0
    for layer in layers:
        for name, mod in list(layer.named_modules()):
            # fairseq's LayerNorm() returns nn.LayerNorm or apex's FusedLayerNorm (a subclass of neither)
            if isinstance(mod, nn.LayerNorm) or type(mod).__name__ == "FusedLayerNorm":
                parent_name, _, attr = name.rpartition(".")
                parent = layer.get_submodule(parent_name) if parent_name else layer
                setattr(parent, attr, nn.Identity())
                count += 1
    return count


def user_exclude_patterns(model: nn.Module, args) -> List[str]:
    """The --sigma-exclude patterns; each must match at least one Linear/Conv module (a typo
    would otherwise silently reparametrize the layers it meant to leave plain)."""
    exclude = [p.strip() for p in str(getattr(args, "sigma_exclude", "") or "").split(",") if p.strip()]
    names = [n for n, m in model.named_modules() if n and isinstance(m, SUPPORTED_TYPES)]
    for pat in exclude:
        if not any(fnmatch.fnmatchcase(n, pat) for n in names):
            example = f" (names look like {names[0]!r})" if names else ""
            raise SigmaOptionError(f"--sigma-exclude pattern {pat!r} matches no Linear/Conv module of the "
                                   f"model{example}")
    return exclude


def excluded_patterns(model: nn.Module, args) -> List[str]:
    """Module-name patterns left plain: --sigma-exclude, and the output layers unless
    --sigma-reparam-output."""
    exclude = user_exclude_patterns(model, args)
    if not args.sigma_reparam_output:
        exclude += list(OUTPUT_LAYER_PATTERNS)
    return exclude


def sigma_reparam_selection(model: nn.Module, args) -> Tuple[List[str], List[str]]:
    """(include, exclude) module-name patterns for apply_sigma_reparam from the flags."""
    exclude = excluded_patterns(model, args)
    if args.sigma_reparam == "attention":
        include = [f"{name}.{proj}" for name, m in model.named_modules() if is_probeable_attention(m)
                   for proj in ("q_proj", "k_proj", "v_proj", "out_proj")]
    else:
        include = None
    return include, exclude


@torch.no_grad()
def scale_initial_weights(model: nn.Module, args, factor: float) -> List[str]:
    """--sigma-init-scale: W₀ ← factor·W₀ for every layer that --sigma-reparam all would convert."""
    exclude = excluded_patterns(model, args)
    scaled = []
    for name, module in model.named_modules():
        if isinstance(module, SUPPORTED_TYPES) and name and not any(
                fnmatch.fnmatchcase(name, pat) for pat in exclude):
            module.weight.mul_(factor)
            scaled.append(name)
    return scaled


def apply_sigma_options(model: nn.Module, args, encoder_layers, decoder_layers) -> dict:
    """Apply --sigma-layernorm none, --sigma-deepnorm and σReparam to a built model, in that order
    (DeepNorm's init first, so that σReparam keeps the β-scaled weights). Returns a summary."""
    summary = {}
    model.sigma_args = args  # the model's configuration, for snapshots written outside fairseq's checkpoints
    user_exclude_patterns(model, args)
    if args.sigma_layernorm == "none":
        summary["layernorms_removed"] = remove_layernorms(list(encoder_layers) + list(decoder_layers))
    if args.sigma_deepnorm:
        summary["deepnorm"] = apply_deepnorm(list(encoder_layers), list(decoder_layers))
    if getattr(args, "sigma_init_scale", 1.0) != 1.0:
        summary["init_scaled"] = scale_initial_weights(model, args, args.sigma_init_scale)
    if args.sigma_reparam != "none":
        include, exclude = sigma_reparam_selection(model, args)
        summary["sigma_reparam"] = apply_sigma_reparam(
            model, include=include, exclude=exclude,
            gamma_init=parse_gamma_init(args.sigma_gamma_init),
            n_power_iterations=args.sigma_power_iterations)
        # u is a buffer: start every data-parallel rank from rank 0's (fairseq does not broadcast buffers).
        broadcast_sigma_state(model)
        decoder = getattr(model, "decoder", None)
        if decoder is not None:
            _cache_weights_while_decoding(decoder)
    return summary


class _DecodingCache:
    """Mixin for fairseq decoders: during one incremental decoding (a beam search calls the
    decoder once per step with the same ``incremental_state``), compute each W_hat once and
    reuse it. Outside that, W_hat is recomputed on every eval forward and can never be stale."""
    _CACHE_KEY = "sigma_plugin.weight_cache"

    def forward(self, *args, **kwargs):
        state = kwargs.get("incremental_state")
        if state is None:
            position = _incremental_state_position(type(self))
            if position is not None and len(args) > position:
                state = args[position]
        if state is None or self.training or torch.is_grad_enabled():
            return super().forward(*args, **kwargs)
        # The token lives in (and dies with) this decoding's incremental_state.
        token = state.setdefault(self._CACHE_KEY, {})
        with cached_sigma_weights(token):
            return super().forward(*args, **kwargs)


def _incremental_state_position(cls: type):
    """Index of ``incremental_state`` among the positional arguments of the decoder's forward."""
    if cls not in _STATE_POSITIONS:
        parent = next(c for c in cls.__mro__[1:] if c is not _DecodingCache and "forward" in vars(c))
        names = list(inspect.signature(parent.forward).parameters)[1:]  # without self
        _STATE_POSITIONS[cls] = names.index("incremental_state") if "incremental_state" in names else None
    return _STATE_POSITIONS[cls]


_STATE_POSITIONS: Dict[type, Optional[int]] = {}
_DECODING_CACHE_CLASSES: Dict[type, type] = {}


def _cache_weights_while_decoding(decoder: nn.Module) -> None:
    cls = type(decoder)
    if issubclass(cls, _DecodingCache):
        return
    if cls not in _DECODING_CACHE_CLASSES:
        _DECODING_CACHE_CLASSES[cls] = type(cls.__name__, (_DecodingCache, cls), {"__module__": cls.__module__})
    decoder.__class__ = _DECODING_CACHE_CLASSES[cls]


def attention_modules(model: nn.Module) -> Tuple[Dict[str, nn.Module], Dict[str, str]]:
    """Name → attention module as ``enc_self.{i}``, ``dec_self.{i}``, ``dec_cross.{i}``, and each
    name's query-padding group (``encoder`` / ``decoder``) for AttentionProbe."""
    modules, groups = {}, {}
    for side, kinds in (("encoder", (("self_attn", "enc_self"),)),
                        ("decoder", (("self_attn", "dec_self"), ("encoder_attn", "dec_cross")))):
        stack = getattr(model, side, None)
        layers = getattr(stack, "layers", None) if stack is not None else None
        for i, layer in enumerate(layers or []):
            for attr, kind in kinds:
                attn = getattr(layer, attr, None)
                if attn is not None and is_probeable_attention(attn):
                    modules[f"{kind}.{i}"] = attn
                    groups[f"{kind}.{i}"] = side
    return modules, groups


class RecordsUpdates:
    """Mixin for sigma_* fairseq models: keep the update number fairseq passes down, which the
    entropy criteria use to decide when to probe (stock models get a counter module instead),
    and give every data-parallel rank the same σReparam u after loading a checkpoint."""
    num_updates = 0

    def load_state_dict(self, state_dict, *args, **kwargs):
        result = super().load_state_dict(state_dict, *args, **kwargs)
        broadcast_sigma_state(self)
        return result

    def set_num_updates(self, num_updates):
        self.num_updates = num_updates
        super().set_num_updates(num_updates)


def _defer_init_while_loading_checkpoints() -> None:
    """fairseq-generate & co. build each model and load its checkpoint right away
    (checkpoint_utils.load_model_ensemble_and_task): build with σReparam's initialisation
    deferred, so that loading takes u and γ from the checkpoint without computing them first."""
    from fairseq import checkpoint_utils
    real = checkpoint_utils.load_model_ensemble_and_task
    if getattr(real, "_sigma_plugin", False):
        return

    def load_model_ensemble_and_task(*args, **kwargs):
        with deferred_sigma_init():
            return real(*args, **kwargs)

    load_model_ensemble_and_task._sigma_plugin = True
    load_model_ensemble_and_task.__doc__ = real.__doc__
    checkpoint_utils.load_model_ensemble_and_task = load_model_ensemble_and_task


_defer_init_while_loading_checkpoints()
