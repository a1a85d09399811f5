"""Where the layers and attention modules of a fairseq model live, for the --sigma-* options, the
entropy probe and per-layer logging -- for any registered model, by the names fairseq gives them.

A *layer list* is an ``nn.ModuleList`` whose attribute name is one of ``LAYER_LISTS`` (``layers``
in MT/LM/BART/RoBERTa/wav2vec2 stacks, ``transformer_layers`` in the S2T encoder,
``conformer_layers`` in the conformer encoder). Its side is ``decoder`` when a component of its
path is ``decoder``, ``encoder`` otherwise (``encoder.sentence_encoder.layers``,
``w2v_encoder.w2v_model.encoder.layers``). No fairseq import."""
import re
from typing import Dict, List, Optional, Tuple

from torch import nn

from sigma_plugin.nn import is_probeable_attention

LAYER_LISTS = ("layers", "transformer_layers", "conformer_layers")
# attention attribute of a layer -> (kind on the decoder side, kind on the encoder side)
_ATTENTION_KINDS = {"self_attn": ("dec_self", "enc_self"), "encoder_attn": ("dec_cross", None)}
_LAYER_IN_PATH = re.compile(r"(?:^|\.)(?:%s)\.(\d+)(?:\.|$)" % "|".join(LAYER_LISTS))


def side_of(path: str) -> str:
    """``decoder`` when a component of the module path is ``decoder``, else ``encoder``."""
    return "decoder" if "decoder" in path.split(".") else "encoder"


def layer_position(path: str) -> Optional[Tuple[str, int]]:
    """(side, layer index) of a module path inside a layer list, e.g.
    ``encoder.layers.3.fc1`` → ("encoder", 3); None outside any layer list."""
    found = _LAYER_IN_PATH.findall(path)
    return (side_of(path), int(found[-1])) if found else None


def layer_prefix(path: str) -> Optional[str]:
    """The path of the layer holding a module: ``encoder.sentence_encoder.layers.3.fc1`` →
    ``encoder.sentence_encoder.layers.3``; None outside any layer list."""
    found = list(_LAYER_IN_PATH.finditer(path))
    return path[:found[-1].end()].rstrip(".") if found else None


def layer_lists(model: nn.Module) -> Dict[str, List[nn.ModuleList]]:
    """{"encoder": [...], "decoder": [...]}: the model's layer lists by side (outermost only)."""
    found = {"encoder": [], "decoder": []}
    taken: List[str] = []
    for name, module in model.named_modules():
        if (isinstance(module, nn.ModuleList) and name.rpartition(".")[2] in LAYER_LISTS
                and not any(name.startswith(t + ".") for t in taken)):
            found[side_of(name)].append(module)
            taken.append(name)
    return found


def transformer_layers(stack: Optional[nn.Module]) -> Optional[nn.ModuleList]:
    """The layer list of a fairseq encoder or decoder (None if it has none)."""
    for attr in LAYER_LISTS:
        layers = getattr(stack, attr, None) if stack is not None else None
        if layers is not None:
            return layers
    return None


def attention_modules(model: nn.Module) -> Tuple[Dict[str, nn.Module], Dict[str, str]]:
    """Name → attention module as ``enc_self.{i}``, ``dec_self.{i}``, ``dec_cross.{i}`` (i: the
    layer index), and each name's query-padding group (``encoder`` / ``decoder``) for
    AttentionProbe: every probeable attention (fairseq's ``MultiheadAttention``) held by a layer
    of a layer list as ``self_attn`` or ``encoder_attn``."""
    modules, groups = {}, {}
    for name, module in model.named_modules():
        parent, _, attr = name.rpartition(".")
        position = layer_position(parent)
        if attr not in _ATTENTION_KINDS or position is None or not is_probeable_attention(module):
            continue
        side, layer = position
        kind = _ATTENTION_KINDS[attr][0 if side == "decoder" else 1]
        key = f"{kind}.{layer}" if kind else None
        if key is None or key in modules:  # a second stack on the same side keeps the first
            continue
        modules[key] = module
        groups[key] = side
    return modules, groups
