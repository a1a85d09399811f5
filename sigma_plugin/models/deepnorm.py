"""DeepNorm (Wang et al. 2022, DeepNet): post-LN layers with residual x·α + f(x) and a β-scaled
Xavier initialisation of the FFN / value / output projections.

fairseq's Transformer layers compute their residual in ``residual_connection(x, residual)``;
``DeepNormEncoderLayer`` / ``DeepNormDecoderLayer`` override only that method. They are plain
module-level subclasses, so a DeepNorm model pickles (``torch.save(model)``, ``copy.deepcopy``)
like a stock one. ``apply_deepnorm`` converts the layers of a built model into them (as torch's
``SyncBatchNorm.convert_sync_batchnorm`` does: a new module of the target class takes over the
old one's state), which also covers fairseq's S2T encoder that builds its layers without a hook.
"""
from typing import Dict, Sequence

import torch
from torch import nn

from fairseq.modules.transformer_layer import TransformerDecoderLayerBase, TransformerEncoderLayerBase


def deepnorm_constants(encoder_layers: int, decoder_layers: int) -> Dict[str, float]:
    """DeepNet (Wang et al. 2022, Table 1) constants for N encoder and M decoder layers: the
    encoder-decoder formulas, or the encoder-only (M = 0) / decoder-only (N = 0) ones."""
    n, m = encoder_layers, decoder_layers
    consts = {}
    if m > 0:
        consts["decoder_alpha"] = (3 * m) ** 0.25 if n > 0 else (2 * m) ** 0.25
        consts["decoder_beta"] = (12 * m) ** -0.25 if n > 0 else (8 * m) ** -0.25
    if n > 0:
        consts["encoder_alpha"] = 0.81 * (n ** 4 * m) ** (1 / 16) if m > 0 else (2 * n) ** 0.25
        consts["encoder_beta"] = 0.87 * (n ** 4 * m) ** (-1 / 16) if m > 0 else (8 * n) ** -0.25
    return consts


class DeepNormResidual:
    """DeepNorm's residual for a fairseq Transformer layer: x_{l+1} = LN(α·x + f(x))."""
    deepnorm_alpha: float = 1.0

    def residual_connection(self, x, residual):
        return residual * self.deepnorm_alpha + x


class DeepNormEncoderLayer(DeepNormResidual, TransformerEncoderLayerBase):
    def __init__(self, cfg, deepnorm_alpha: float, return_fc: bool = False):
        super().__init__(cfg, return_fc=return_fc)
        self.deepnorm_alpha = float(deepnorm_alpha)


class DeepNormDecoderLayer(DeepNormResidual, TransformerDecoderLayerBase):
    def __init__(self, cfg, deepnorm_alpha: float, no_encoder_attn: bool = False):
        super().__init__(cfg, no_encoder_attn=no_encoder_attn)
        self.deepnorm_alpha = float(deepnorm_alpha)


def _deepnorm_layer(layer: nn.Module, alpha: float, decoder_cfg=None) -> nn.Module:
    """The DeepNorm twin of a fairseq layer, holding the layer's own parameters and buffers."""
    # Built with the global random state saved and restored: the twin's throw-away initial
    # weights must not shift the random stream that later initialisations draw from.
    with torch.random.fork_rng(devices=[]):
        if isinstance(layer, TransformerEncoderLayerBase):
            twin = DeepNormEncoderLayer(layer.cfg, alpha, return_fc=layer.return_fc)
        elif isinstance(layer, TransformerDecoderLayerBase) and decoder_cfg is not None:
            twin = DeepNormDecoderLayer(decoder_cfg, alpha, no_encoder_attn=layer.encoder_attn is None)
        else:
            raise TypeError(f"--sigma-deepnorm needs fairseq Transformer layers, got {type(layer).__name__} "
                            f"(activation checkpointing / FSDP wrapping is not supported with DeepNorm)")
    twin.load_state_dict(layer.state_dict())
    twin.train(layer.training)
    return twin


def apply_deepnorm(encoder_layers: Sequence[nn.Module], decoder_layers: Sequence[nn.Module],
                   decoder_cfg=None) -> Dict[str, float]:
    """Turn the layers (items of an nn.ModuleList, replaced in place) into DeepNorm layers with
    residual scaling α, and give their linear layers DeepNet's β-scaled Xavier-normal
    initialisation (gain 1 for the query/key projections). ``decoder_cfg``: the decoder's
    TransformerConfig (fairseq's decoder layers do not keep theirs). Returns the constants."""
    c = deepnorm_constants(len(encoder_layers), len(decoder_layers))
    for side, layers in (("encoder", encoder_layers), ("decoder", decoder_layers)):
        if not len(layers):
            continue
        alpha, beta = c[f"{side}_alpha"], c[f"{side}_beta"]
        for i, layer in enumerate(list(layers)):
            layer = layers[i] = _deepnorm_layer(layer, alpha, decoder_cfg)
            for name, mod in layer.named_modules():
                if isinstance(mod, nn.Linear):
                    gain = 1.0 if name.endswith(("q_proj", "k_proj")) else beta
                    nn.init.xavier_normal_(mod.weight, gain=gain)
    return c

