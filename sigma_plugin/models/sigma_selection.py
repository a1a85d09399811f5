"""Which modules the --sigma-* flags touch: σReparam's include/exclude patterns (--sigma-reparam,
--sigma-reparam-output, --sigma-exclude) and --sigma-init-scale's initial weight scaling."""
import fnmatch
from collections import Counter
from typing import Dict, List, Tuple

import torch
from torch import nn

from sigma_plugin.nn import is_probeable_attention, is_sigma_reparametrized
from sigma_plugin.nn.parametrization import SUPPORTED_TYPES

from .sigma_flags import SigmaOptionError

# Output layers (vocabulary / label projections) are left plain unless --sigma-reparam-output:
# MT/LM/S2T decoders, CTC heads, wav2vec2 fine-tuning heads, classification heads, adaptive softmax.
OUTPUT_LAYER_PATTERNS = ("decoder.output_projection", "*ctc_proj", "w2v_encoder.proj",
                         "classification_heads.*.out_proj", "*adaptive_softmax.*")


def unsupported_weights(model: nn.Module) -> Dict[str, str]:
    """Linear/Conv modules σReparam must leave plain, with the reason: a weight shared with another
    module (tied projections, adaptive input/softmax, RoBERTa's LM head: a parametrization would
    untie it), or a weight that is not a parameter (the old ``nn.utils.weight_norm``, e.g. wav2vec2's
    positional convolution: it computes ``weight`` from ``weight_g``/``weight_v``)."""
    uses = Counter(id(p) for _, p in model.named_parameters(remove_duplicate=False))
    skipped = {}
    for name, module in model.named_modules():
        if not (name and isinstance(module, SUPPORTED_TYPES)):
            continue
        weight = module._parameters.get("weight") if "weight" in module._parameters else None
        if is_sigma_reparametrized(module):
            continue
        if weight is None:
            skipped[name] = "its weight is not a parameter (weight norm)"
        elif uses[id(weight)] > 1:
            skipped[name] = "its weight is shared with another module (kept plain and tied)"
    return skipped


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
    return exclude + list(unsupported_weights(model))


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
