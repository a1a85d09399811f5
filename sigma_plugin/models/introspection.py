"""Where the layers and attention modules of fairseq Transformer models live, for the entropy
probe and per-layer logging: MT encoders/decoders keep their layers in ``layers``, fairseq's S2T
encoder in ``transformer_layers``."""
from typing import Dict, Optional, Tuple

from torch import nn

from sigma_plugin.nn import is_probeable_attention

LAYER_LISTS = ("layers", "transformer_layers")


def transformer_layers(stack: Optional[nn.Module]) -> Optional[nn.ModuleList]:
    """The layer list of a fairseq encoder or decoder (None if it has none)."""
    for attr in LAYER_LISTS:
        layers = getattr(stack, attr, None) if stack is not None else None
        if layers is not None:
            return layers
    return None


def attention_modules(model: nn.Module) -> Tuple[Dict[str, nn.Module], Dict[str, str]]:
    """Name → attention module as ``enc_self.{i}``, ``dec_self.{i}``, ``dec_cross.{i}``, and each
    name's query-padding group (``encoder`` / ``decoder``) for AttentionProbe."""
    modules, groups = {}, {}
    for side, kinds in (("encoder", (("self_attn", "enc_self"),)),
                        ("decoder", (("self_attn", "dec_self"), ("encoder_attn", "dec_cross")))):
        layers = transformer_layers(getattr(model, side, None))
        for i, layer in enumerate(layers or []):
            for attr, kind in kinds:
                attn = getattr(layer, attr, None)
                if attn is not None and is_probeable_attention(attn):
                    modules[f"{kind}.{i}"] = attn
                    groups[f"{kind}.{i}"] = side
    return modules, groups
