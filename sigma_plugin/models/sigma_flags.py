"""The `--sigma-*` model flags, defined once (one dataclass for every sigma_* model), and the error
their bad values raise. ``SigmaModelConfig`` is every twin's (``sigma_<arch>``: LayerNorm where the
stock arch puts it); ``SigmaPostLNModelConfig`` differs only in defaulting to post-LN, for the
speech families whose recipes and checkpoints rely on that."""
from dataclasses import dataclass, field

from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.dataclass.utils import gen_parser_from_dataclass

SIGMA_REPARAM_CHOICES = ChoiceEnum(["all", "attention", "none"])
LAYERNORM_CHOICES = ChoiceEnum(["stock", "post", "pre", "none"])

class SigmaOptionError(ValueError):
    """A bad flag value or combination. fairseq-train / fairseq-generate stop with this one-line
    message and no traceback (``sigma_plugin.register`` installs the hook); in-process callers
    get an ordinary ValueError."""
    one_line = True


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
    sigma_keep_weights: bool = field(
        default=False,
        metadata={"help": "keep each W_hat for the backward pass (the memory of one more copy of the "
                          "weights) instead of rebuilding it there from W and γ/σ (the default: a stock "
                          "model's memory for one more scaling of each weight per update)"})
    sigma_layernorm: LAYERNORM_CHOICES = field(
        default="stock",
        metadata={"help": "LayerNorm placement: 'stock' (where the stock arch puts it), 'post' (after the "
                          "residual add; the paper's setting), 'pre' (before each sublayer, with a final "
                          "LayerNorm), or 'none' (no LayerNorm in the layers: the paper's no-LN ablation). "
                          "'post'/'pre'/'none' set the model's own switches (--encoder/decoder-normalize-before, "
                          "--layer-norm-first) after the arch function ran"})
    sigma_deepnorm: bool = field(
        default=False,
        metadata={"help": "DeepNorm baseline (Wang et al. 2022, DeepNet): post-LN with residual x·α + f(x) and "
                          "β-scaled Xavier init of FFN/value/output projections, α/β from the encoder-decoder "
                          "formulas. Needs --sigma-layernorm post"})


@dataclass
class SigmaPostLNModelConfig(SigmaModelConfig):
    sigma_layernorm: LAYERNORM_CHOICES = field(
        default="post", metadata=SigmaModelConfig.__dataclass_fields__["sigma_layernorm"].metadata)


def add_sigma_args(parser, config: type = SigmaModelConfig) -> None:
    gen_parser_from_dataclass(parser, config())


def set_sigma_defaults(args, config: type = SigmaModelConfig) -> None:
    """Fill in missing --sigma-* attributes (architecture functions, old checkpoints)."""
    for name, f in config.__dataclass_fields__.items():
        if name.startswith("sigma_") and not hasattr(args, name):
            setattr(args, name, f.default)

