"""`sigma_transformer`: the σReparam twin of fairseq's Transformer (models/twins.py), written by hand
for its decoder, which computes each W_hat once per beam search, and its `_tiny` preset; the
--sigma-* options (σReparam, LN placement, DeepNorm) are applied after the model is built so that
weights are kept. Its other archs (`sigma_transformer_vaswani_wmt_en_de_big`, ...) are registered
on it by ``register_twins``."""
from __future__ import annotations

from fairseq.models import register_model, register_model_architecture
from fairseq.models.transformer import TransformerConfig, TransformerDecoderBase, TransformerModel
from fairseq.models.transformer.transformer_legacy import (
    base_architecture, tiny_architecture, transformer_iwslt_de_en, transformer_wmt_en_de,
    transformer_wmt_en_de_big)

from .decoding_cache import DecodingCache
from .twins import SigmaTwin


class SigmaTransformerDecoder(DecodingCache, TransformerDecoderBase):
    """fairseq's Transformer decoder that computes each σReparam weight once per beam search."""


@register_model("sigma_transformer")
class SigmaTransformerModel(SigmaTwin, TransformerModel):
    """fairseq's Transformer (post-LN, as its archs are) with every linear layer σReparam'd.

    Any depth via --encoder-layers/--decoder-layers; see docs/flags.md for --sigma-*.
    """
    sigma_stock_model = "transformer"

    @classmethod
    def build_decoder(cls, args, tgt_dict, embed_tokens):
        # as TransformerModel's (legacy) and TransformerModelBase's build_decoder, with our class
        cfg = TransformerConfig.from_namespace(args)
        return SigmaTransformerDecoder(cfg, tgt_dict, embed_tokens, no_encoder_attn=cfg.no_cross_attention)


@register_model_architecture("sigma_transformer", "sigma_transformer")
def sigma_transformer_base(args):
    base_architecture(args)


@register_model_architecture("sigma_transformer", "sigma_transformer_tiny")
def sigma_transformer_tiny(args):
    tiny_architecture(args)


@register_model_architecture("sigma_transformer", "sigma_transformer_iwslt_de_en")
def sigma_transformer_iwslt_de_en(args):
    transformer_iwslt_de_en(args)


@register_model_architecture("sigma_transformer", "sigma_transformer_wmt_en_de")
def sigma_transformer_wmt_en_de(args):
    transformer_wmt_en_de(args)


@register_model_architecture("sigma_transformer", "sigma_transformer_wmt_en_de_big")
def sigma_transformer_wmt_en_de_big(args):
    transformer_wmt_en_de_big(args)
