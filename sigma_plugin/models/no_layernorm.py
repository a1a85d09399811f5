"""--sigma-layernorm none: the paper's no-LayerNorm ablation."""
from typing import Sequence

from torch import nn


def remove_layernorms(layers: Sequence[nn.Module]) -> int:
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
