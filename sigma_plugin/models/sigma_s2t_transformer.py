"""`sigma_s2t_transformer`: fairseq's speech-to-text Transformer (conv subsampler + encoder-decoder)
with the --sigma-* options: post-LN by default, σReparam on every linear layer and on the conv
subsampler, optional CTC head on the encoder output (built when --sigma-ctc-weight > 0).

fairseq's S2TTransformerEncoder builds its layers without a hook, so the options are applied
to the built model (weights are kept). The encoder keeps fairseq's names (its layers in
``transformer_layers``), so checkpoints have stock S2T keys; checkpoints of the earlier layout,
whose encoder layers were renamed ``layers``, are upgraded when loaded (``upgrade_state_dict_named``).
"""
from __future__ import annotations

import logging
from typing import Dict, List, Tuple

import torch
from torch import Tensor, nn

from fairseq import utils
from fairseq.models import register_model, register_model_architecture
from fairseq.models.speech_to_text.s2t_transformer import (
    S2TTransformerEncoder, S2TTransformerModel, TransformerDecoderScriptable, base_architecture,
    s2t_transformer_l, s2t_transformer_m, s2t_transformer_s)

from .decoding_cache import DecodingCache
from .sigma_flags import SigmaOptionError, SigmaPostLNModelConfig
from .sigma_validation import preset_layernorm_switches
from .twins import SigmaTwin

logger = logging.getLogger(__name__)


def wants_ctc_head(args) -> bool:
    """The CTC head exists iff a CTC loss will train it: the criterion's weight, read from the
    shared args as fairseq's own S2T model does with --ctc-weight (unused parameters would
    break distributed training)."""
    return getattr(args, "sigma_ctc_weight", 0.0) > 0 or getattr(args, "ctc_weight", 0.0) > 0


class SigmaS2TTransformerEncoder(S2TTransformerEncoder):
    """S2TTransformerEncoder with a CTC head whenever a CTC loss trains it."""

    def __init__(self, args, ctc_head: bool = False):
        super().__init__(args)
        if ctc_head and self.ctc_proj is None:
            self.ctc_proj = nn.Linear(args.encoder_embed_dim, args.tgt_dict_size)

    def upgrade_state_dict_named(self, state_dict, name):
        """Checkpoints written before sigma_s2t_* used stock key names call the encoder layers
        ``{name}.layers.*``: rename them to fairseq's ``{name}.transformer_layers.*``."""
        prefix = f"{name}." if name else ""
        old, new = prefix + "layers.", prefix + "transformer_layers."
        for key in [k for k in state_dict if k.startswith(old)]:
            state_dict[new + key[len(old):]] = state_dict.pop(key)
        return state_dict

    def ctc_output(self, encoder_out: Dict[str, List[Tensor]]) -> Tuple[Tensor, Tensor]:
        """CTC log-probabilities (T, B, V) in fp32 and the valid length of each utterance."""
        if self.ctc_proj is None:
            raise RuntimeError("this model has no CTC head: train it with --sigma-ctc-weight > 0")
        x = encoder_out["encoder_out"][0]
        lprobs = utils.log_softmax(self.ctc_proj(x).float(), dim=-1)
        lens = lprobs.new_full((lprobs.shape[1],), lprobs.shape[0]).long()
        if len(encoder_out["encoder_padding_mask"]) > 0:
            lens -= encoder_out["encoder_padding_mask"][0].sum(dim=-1)
        return lprobs, lens


def set_layernorm_default(args) -> None:
    """fairseq's s2t presets default to pre-LN; ours follow --sigma-layernorm (post by default)."""
    preset_layernorm_switches(args, SigmaPostLNModelConfig)


class SigmaS2TTransformerDecoder(DecodingCache, TransformerDecoderScriptable):
    """fairseq's S2T decoder that computes each σReparam weight once per beam search."""


@register_model("sigma_s2t_transformer")
class SigmaS2TTransformerModel(SigmaTwin, S2TTransformerModel):
    """Speech-to-text encoder-decoder Transformer with σReparam (docs/asr.md): the twin of fairseq's
    s2t_transformer, post-LN by default, with a CTC head when a CTC loss trains it."""
    sigma_config = SigmaPostLNModelConfig
    sigma_stock_model = "s2t_transformer"

    @classmethod
    def build_encoder(cls, args):
        if getattr(args, "load_pretrained_encoder_from", None):
            raise SigmaOptionError("--load-pretrained-encoder-from is not supported by sigma_s2t_transformer")
        return SigmaS2TTransformerEncoder(args, ctc_head=wants_ctc_head(args))

    @classmethod
    def build_decoder(cls, args, task, embed_tokens):
        # as S2TTransformerModel.build_decoder, with our class
        return SigmaS2TTransformerDecoder(args, task.target_dictionary, embed_tokens)

    def get_ctc_output(self, net_output, sample=None):
        # S2TTransformerModel.get_ctc_output computes the same; the encoder's says which flag
        # builds a missing CTC head instead of failing on calling None
        return self.encoder.ctc_output(net_output[1]["encoder_out"])


@register_model_architecture("sigma_s2t_transformer", "sigma_s2t_transformer")
def sigma_s2t_transformer_base(args):
    set_layernorm_default(args)
    base_architecture(args)


@register_model_architecture("sigma_s2t_transformer", "sigma_s2t_transformer_tiny")
def sigma_s2t_transformer_tiny(args):
    """For tests: d=64, 2 encoder + 1 decoder layers."""
    args.encoder_embed_dim = getattr(args, "encoder_embed_dim", 64)
    args.encoder_ffn_embed_dim = getattr(args, "encoder_ffn_embed_dim", 128)
    args.encoder_layers = getattr(args, "encoder_layers", 2)
    args.decoder_layers = getattr(args, "decoder_layers", 1)
    args.encoder_attention_heads = getattr(args, "encoder_attention_heads", 2)
    args.decoder_attention_heads = getattr(args, "decoder_attention_heads", 2)
    args.conv_channels = getattr(args, "conv_channels", 64)
    args.dropout = getattr(args, "dropout", 0.0)
    sigma_s2t_transformer_s(args)


@register_model_architecture("sigma_s2t_transformer", "sigma_s2t_transformer_s")
def sigma_s2t_transformer_s(args):
    set_layernorm_default(args)
    s2t_transformer_s(args)


@register_model_architecture("sigma_s2t_transformer", "sigma_s2t_transformer_m")
def sigma_s2t_transformer_m(args):
    set_layernorm_default(args)
    s2t_transformer_m(args)


@register_model_architecture("sigma_s2t_transformer", "sigma_s2t_transformer_l")
def sigma_s2t_transformer_l(args):
    set_layernorm_default(args)
    s2t_transformer_l(args)
