"""How the `--sigma-*` model flags are applied to a built model.

Every sigma_* model (MT and ASR) calls ``add_sigma_args`` (sigma_flags) in ``add_args``,
``prepare_sigma_args`` (sigma_validation) before building, and ``apply_sigma_options`` on the
built model; its class mixes in ``RecordsUpdates``. The pieces: sigma_flags (the flags),
sigma_validation, no_layernorm, deepnorm, sigma_selection (which modules), introspection
(where layers and attention modules live), decoding_cache, checkpoint_loading.
"""
import logging

import torch
from torch import nn

from sigma_plugin.nn import (apply_sigma_reparam, broadcast_sigma_state, recomputed_sigma_weights,
                             remove_sigma_reparam, sigma_reparam_modules)
from sigma_plugin.nn.parametrization import INIT_POWER_ITERATIONS

from .deepnorm import apply_deepnorm
from .introspection import layer_lists
from .no_layernorm import remove_layernorms
from .sigma_flags import SigmaOptionError
from .sigma_selection import (scale_initial_weights, sigma_reparam_selection, unsupported_weights,
                              user_exclude_patterns)
from .sigma_validation import parse_gamma_init

logger = logging.getLogger(__name__)


def apply_sigma_options(model: nn.Module, args, name: str = "") -> dict:
    """Apply --sigma-layernorm none, --sigma-deepnorm and σReparam to a built model, in that order
    (DeepNorm's init first, so that σReparam keeps the β-scaled weights). The layers are found by
    introspection (any fairseq model). Logs one summary line (``name``: the model's name) and
    returns the summary."""
    summary = {}
    model.sigma_args = args  # the model's configuration, for snapshots written outside fairseq's checkpoints
    user_exclude_patterns(model, args)
    stacks = layer_lists(model)
    if args.sigma_layernorm == "none":
        summary["layernorms_removed"] = remove_layernorms(
            [layer for layers in stacks["encoder"] + stacks["decoder"] for layer in layers])
    if args.sigma_deepnorm:
        summary["deepnorm"] = apply_deepnorm(_one_stack(stacks, "encoder"), _one_stack(stacks, "decoder"),
                                             decoder_cfg=getattr(getattr(model, "decoder", None), "cfg", None))
    if getattr(args, "sigma_init_scale", 1.0) != 1.0:
        summary["init_scaled"] = scale_initial_weights(model, args, args.sigma_init_scale)
    if args.sigma_reparam != "none":
        summary["left_plain"] = unsupported_weights(model)
        include, exclude = sigma_reparam_selection(model, args)
        summary["sigma_reparam"] = apply_sigma_reparam(
            model, include=include, exclude=exclude,
            gamma_init=parse_gamma_init(args.sigma_gamma_init),
            n_power_iterations=args.sigma_power_iterations)
        if not summary["sigma_reparam"]:
            raise SigmaOptionError(
                f"{name or type(model).__name__}: --sigma-reparam {args.sigma_reparam} found no torch Linear/Conv "
                f"weight to reparametrize (layers of other types, such as model-parallel or HuggingFace "
                f"ones, are not supported); use the stock arch, or --sigma-reparam none")
        model._sigma_broadcast_pending = True  # see RecordsUpdates.forward
    _log_summary(name or type(model).__name__, args, summary)
    return summary


def _one_stack(stacks, side):
    """The one layer list of a side for DeepNorm (its α/β depend on that side's depth)."""
    if len(stacks[side]) > 1:
        raise SigmaOptionError(f"--sigma-deepnorm: the model has {len(stacks[side])} {side} layer stacks; "
                               f"DeepNorm's constants are defined for one encoder and one decoder stack")
    return stacks[side][0] if stacks[side] else []


def _log_summary(name: str, args, summary: dict) -> None:
    logger.info("%s: %d weights σReparam'd (%s), layernorm=%s, deepnorm=%s", name,
                len(summary.get("sigma_reparam", [])), args.sigma_reparam, args.sigma_layernorm,
                bool(summary.get("deepnorm", False)))
    for module, why in summary.get("left_plain", {}).items():
        logger.info("%s: %s left plain: %s", name, module, why)


def report_import(model: nn.Module) -> int:
    """After a load: one line when plain (stock) weights were imported into σReparam weights, and
    one warning per --sigma-* option that makes the imported model compute something else than the
    stock one. Returns the number of weights imported by this load."""
    fresh = [p for _, _, p in sigma_reparam_modules(model) if p.imported is True]
    for p in fresh:
        p.imported = "reported"  # each import is reported once (still true-ish for callers)
    if not fresh:
        return 0
    args = getattr(model, "sigma_args", None)
    logger.info("imported %d plain weights into σReparam (u from %d power-iteration steps on each loaded "
                "weight, γ₀ by --sigma-gamma-init)", len(fresh), INIT_POWER_ITERATIONS)
    changes = []
    if args is not None:
        if str(getattr(args, "sigma_gamma_init", "sigma0")) != "sigma0":
            changes.append(f"--sigma-gamma-init {args.sigma_gamma_init} scales every imported branch (γ₀ ≠ σ₀)")
        if getattr(args, "sigma_init_scale", 1.0) != 1.0:
            logger.warning("importing a stock checkpoint: --sigma-init-scale has no effect (the loaded weights "
                           "replace the scaled initial ones)")
        if str(getattr(args, "sigma_layernorm", "stock")) != "stock":
            changes.append(f"--sigma-layernorm {args.sigma_layernorm} may move LayerNorm away from where the "
                           f"stock model had it")
        if getattr(args, "sigma_deepnorm", False):
            changes.append("--sigma-deepnorm scales the residuals (x·α + f(x)) of the imported layers")
    for change in changes:
        logger.warning("importing a stock checkpoint: %s: the model no longer computes the stock function", change)
    return len(fresh)


class RecordsUpdates:
    """Mixin for sigma_* fairseq models: keep the update number fairseq passes down, which the
    entropy criteria use to decide when to probe, give every data-parallel rank the same
    σReparam u at the first training forward after a build or a load, rebuild W_hat in the backward pass instead of keeping
    it, and fold σReparam away for generation."""
    num_updates = 0

    def forward(self, *args, **kwargs):
        if self.training and getattr(self, "_sigma_broadcast_pending", False):
            # u is a buffer: every data-parallel rank starts from rank 0's (fairseq does not broadcast
            # buffers). Done at the first training forward after a build or a load -- a point every
            # rank reaches together -- not inside build_model/load_state_dict, which may run on one
            # rank alone (building or loading there would wait forever for the others).
            self._sigma_broadcast_pending = False
            broadcast_sigma_state(self)
        if (self.training and torch.is_grad_enabled()
                and not getattr(getattr(self, "sigma_args", None), "sigma_keep_weights", False)):
            # memory of a plain model: autograd keeps W and γ/σ, not W_hat (docs/overhead.md)
            with recomputed_sigma_weights():
                return super().forward(*args, **kwargs)
        return super().forward(*args, **kwargs)

    def load_state_dict(self, state_dict, *args, **kwargs):
        result = super().load_state_dict(state_dict, *args, **kwargs)
        self._sigma_broadcast_pending = True
        report_import(self)
        return result

    def set_num_updates(self, num_updates):
        self.num_updates = num_updates
        super().set_num_updates(num_updates)

    def make_generation_fast_(self, **kwargs):
        # fairseq-generate, -interactive, -eval-lm and the hub interface call this (through
        # prepare_for_inference_) and it ends training for good (fairseq's own version removes
        # weight norm and forbids train()): fold each W_hat = (γ/σ)·W into a plain weight, exactly
        # as eval mode computes it, so that decoding runs at the speed of a stock model.
        first_time = not getattr(self, "_is_generation_fast", False)
        super().make_generation_fast_(**kwargs)
        if first_time:
            remove_sigma_reparam(self)
