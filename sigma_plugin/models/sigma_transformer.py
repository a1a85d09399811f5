"""`sigma_transformer`: fairseq's Transformer with the --sigma-* options (σReparam, LN placement,
DeepNorm), applied after the model is built so that weights are kept."""
from __future__ import annotations

import logging

from fairseq.models import register_model, register_model_architecture
from fairseq.models.transformer import TransformerConfig, TransformerDecoderBase, TransformerModel
from fairseq.models.transformer.transformer_legacy import (
    base_architecture, tiny_architecture, transformer_iwslt_de_en, transformer_wmt_en_de,
    transformer_wmt_en_de_big)

from .decoding_cache import DecodingCache
from .sigma_flags import add_sigma_args
from .sigma_options import RecordsUpdates, apply_sigma_options
from .sigma_validation import prepare_sigma_args

logger = logging.getLogger(__name__)


class SigmaTransformerDecoder(DecodingCache, TransformerDecoderBase):
    """fairseq's Transformer decoder that computes each σReparam weight once per beam search."""


@register_model("sigma_transformer")
class SigmaTransformerModel(RecordsUpdates, TransformerModel):
    """Post-LN Transformer (by default) with every linear layer σReparam'd.

    Any depth via --encoder-layers/--decoder-layers; see docs/flags.md for --sigma-*.
    """

    @classmethod
    def add_args(cls, parser):
        super().add_args(parser)
        add_sigma_args(parser)

    @classmethod
    def build_decoder(cls, args, tgt_dict, embed_tokens):
        # as TransformerModel's (legacy) and TransformerModelBase's build_decoder, with our class
        cfg = TransformerConfig.from_namespace(args)
        return SigmaTransformerDecoder(cfg, tgt_dict, embed_tokens, no_encoder_attn=cfg.no_cross_attention)

    @classmethod
    def build_model(cls, args, task):
        prepare_sigma_args(args)
        model = super().build_model(args, task)
        summary = apply_sigma_options(model, args, model.encoder.layers, model.decoder.layers,
                                      decoder_cfg=model.decoder.cfg)
        model.sigma_summary = summary
        logger.info(
            "sigma_transformer: %d weights σReparam'd (%s), layernorm=%s, deepnorm=%s",
            len(summary.get("sigma_reparam", [])), args.sigma_reparam, args.sigma_layernorm,
            summary.get("deepnorm", False))
        return model


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
