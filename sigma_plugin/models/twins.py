"""σReparam twins of fairseq's models: ``sigma_<arch>`` for every registered arch.

fairseq has one precedent for a transform applied to whatever model an arch builds
(``FairseqTask.build_model`` runs ``quantize_model_scalar`` on it); a twin does the same with the
--sigma-* options. For each registered model ``M`` (fairseq's built-in ones and any registered
before this plugin is imported) ``register_twins`` registers a model ``sigma_M``: the stock class
with ``SigmaTwin`` mixed in before it (and, for a dataclass-configured model, a dataclass with the
--sigma-* fields added, or fairseq would drop them from ``cfg.model`` and from the checkpoint), and
for each arch ``A`` of ``M`` the arch ``sigma_A``, which runs A's arch function. A twin builds the
stock model, then applies the --sigma-* options; its defaults are the stock arch's (same sizes, same
LayerNorm placement) with σReparam on every linear/conv layer and γ₀ = σ₀: at initialisation it
computes what the stock model computes, and a stock checkpoint loads into it (the pre-hook of
``sigma_plugin.nn.parametrization``).

Where a ``sigma_M`` model of this plugin already exists (``sigma_transformer``,
``sigma_s2t_transformer``), its class is a ``SigmaTwin`` written by hand; the stock archs that it
does not name itself are registered on it in the same way (docs/flags.md says what those add).
"""

import dataclasses
import sys
from typing import Dict, List

from fairseq.models import (ARCH_CONFIG_REGISTRY, ARCH_MODEL_NAME_REGISTRY, ARCH_MODEL_REGISTRY,
                            MODEL_REGISTRY, register_model, register_model_architecture)
from omegaconf import II

from .sigma_flags import SigmaModelConfig, add_sigma_args
from .sigma_options import RecordsUpdates, apply_sigma_options
from .sigma_validation import prepare_sigma_args, preset_layernorm_switches, record_arch_switches


PREFIX = "sigma_"


class SigmaTwin(RecordsUpdates):
    """Put before a stock fairseq model class: the --sigma-* flags, their validation before the
    stock ``build_model`` and their application to the model it returns."""
    sigma_config: type = SigmaModelConfig
    sigma_stock_model: str = ""

    @classmethod
    def add_args(cls, parser):
        super().add_args(parser)
        if getattr(cls, "__dataclass", None) is None:  # a dataclass model's fields carry the flags
            add_sigma_args(parser, cls.sigma_config)

    @classmethod
    def build_model(cls, args, task):
        prepare_sigma_args(args, cls.sigma_config)
        model = super().build_model(args, task)
        model.sigma_summary = apply_sigma_options(model, args, cls.twin_name())
        return model

    @classmethod
    def twin_name(cls) -> str:
        return PREFIX + cls.sigma_stock_model if cls.sigma_stock_model else cls.__name__


@dataclasses.dataclass
class _UnsafeFlags:
    """fairseq options outside ``cfg.model`` that a dataclass twin reads to refuse them
    (sigma_validation.refuse_unsafe_flags): no help text, so no command-line flag of their own."""
    ddp_backend: str = II("distributed_training.ddp_backend")
    store_ema: bool = II("ema.store_ema")


def _twin_dataclass(stock_dc: type) -> type:
    name = f"Sigma{stock_dc.__name__}"
    dc = dataclasses.make_dataclass(name, [], bases=(stock_dc, SigmaModelConfig, _UnsafeFlags))
    dc.__module__ = __name__
    setattr(sys.modules[__name__], name, dc)  # importable by name, like a hand-written class
    return dc


def _twin_class(stock_cls: type, model_name: str) -> type:
    name = f"Sigma_{stock_cls.__name__}_{model_name}"
    cls = type(name, (SigmaTwin, stock_cls), {
        "__module__": __name__, "sigma_stock_model": model_name,
        "__doc__": f"fairseq's {model_name!r} ({stock_cls.__name__}) with the --sigma-* options (σReparam)."})
    setattr(sys.modules[__name__], name, cls)  # picklable (torch.save(model), copy.deepcopy)
    return cls


def _twin_arch(stock_arch_fn, model_cls: type):
    def arch(args):
        preset_layernorm_switches(args, model_cls.sigma_config)
        record_arch_switches(args, stock_arch_fn)
    arch.__doc__ = f"{getattr(stock_arch_fn, '__name__', 'arch')} (fairseq's arch function)"
    return arch


def stock_archs() -> Dict[str, List[str]]:
    """Stock model name → its arch names (models and archs without the sigma_ prefix)."""
    found: Dict[str, List[str]] = {}
    for arch, model in ARCH_MODEL_NAME_REGISTRY.items():
        if not model.startswith(PREFIX) and not arch.startswith(PREFIX):
            found.setdefault(model, []).append(arch)
    return found


def register_twins() -> int:
    """Register ``sigma_<model>`` and ``sigma_<arch>`` for every stock model/arch registered now;
    idempotent. Returns the number of archs registered by this call."""
    added = 0
    for model_name, archs in stock_archs().items():
        twin = PREFIX + model_name
        if twin not in MODEL_REGISTRY:
            stock_cls = MODEL_REGISTRY[model_name]
            stock_dc = getattr(stock_cls, "__dataclass", None)
            register_model(twin, dataclass=_twin_dataclass(stock_dc) if stock_dc else None)(
                _twin_class(stock_cls, model_name))
        if not issubclass(MODEL_REGISTRY[twin], SigmaTwin):
            continue  # a model of that name from another plugin: leave it alone
        for arch in archs:
            if PREFIX + arch in ARCH_MODEL_REGISTRY:
                continue  # the dataclass model's own arch, or one named by hand
            register_model_architecture(twin, PREFIX + arch)(
                _twin_arch(ARCH_CONFIG_REGISTRY[arch], MODEL_REGISTRY[twin]))
            added += 1
    return added


def twin_arch_of(arch: str) -> str:
    """The σReparam twin of a stock arch (a one-line error when there is none)."""
    from .sigma_flags import SigmaOptionError
    if arch.startswith(PREFIX) and arch in ARCH_MODEL_REGISTRY:
        return arch
    if PREFIX + arch not in ARCH_MODEL_REGISTRY:
        raise SigmaOptionError(f"arch {arch!r} has no σReparam twin: it is not a registered fairseq arch "
                               f"(import the plugin that registers it before sigma_plugin)")
    return PREFIX + arch
