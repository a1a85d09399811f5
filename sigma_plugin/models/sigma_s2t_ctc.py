"""`sigma_s2t_ctc`: CTC-only speech recognizer -- fairseq's S2T conv subsampler and Transformer
encoder (post-LN by default, σReparam on every linear/conv layer) and a linear CTC output layer
over the target dictionary, whose ``<s>`` symbol doubles as the CTC blank (it never occurs in
targets). Greedy decoding: ``ctc_greedy_decode``; scoring/decoding CLI: sigma_plugin.asr.decode_ctc.
"""
from __future__ import annotations

from typing import List

from fairseq.models import FairseqEncoderModel, register_model, register_model_architecture
from fairseq.models.speech_to_text.s2t_transformer import S2TTransformerModel

from sigma_plugin.decoding.ctc_greedy import ctc_greedy_decode

from .sigma_flags import SigmaPostLNModelConfig, add_sigma_args
from .sigma_options import RecordsUpdates, apply_sigma_options
from .sigma_validation import prepare_sigma_args
from .sigma_s2t_transformer import (SigmaS2TTransformerEncoder, sigma_s2t_transformer_base,
                                    sigma_s2t_transformer_l, sigma_s2t_transformer_m,
                                    sigma_s2t_transformer_s, sigma_s2t_transformer_tiny)


@register_model("sigma_s2t_ctc")
class SigmaS2TCTCModel(RecordsUpdates, FairseqEncoderModel):
    """Conv subsampling + Transformer encoder + CTC output layer (``encoder.ctc_proj``)."""

    def __init__(self, encoder, blank_idx: int):
        super().__init__(encoder)
        self.blank_idx = blank_idx

    @staticmethod
    def add_args(parser):
        S2TTransformerModel.add_args(parser)  # conv/encoder options; decoder ones are ignored
        add_sigma_args(parser, SigmaPostLNModelConfig)

    @classmethod
    def build_model(cls, args, task):
        prepare_sigma_args(args, SigmaPostLNModelConfig)
        sigma_s2t_ctc_base(args)
        args.tgt_dict_size = len(task.target_dictionary)
        encoder = SigmaS2TTransformerEncoder(args, ctc_head=True)
        model = cls(encoder, blank_idx=task.target_dictionary.bos())
        model.sigma_summary = apply_sigma_options(model, args, "sigma_s2t_ctc")
        return model

    def forward(self, src_tokens, src_lengths, **unused):
        """Encoder output dict (the task also passes prev_output_tokens: unused here)."""
        return self.encoder(src_tokens=src_tokens, src_lengths=src_lengths)

    def get_ctc_output(self, net_output, sample=None):
        """(T, B, V) fp32 log-probabilities and valid lengths."""
        return self.encoder.ctc_output(net_output)

    def get_normalized_probs(self, net_output, log_probs, sample=None):
        lprobs, _ = self.get_ctc_output(net_output)
        return lprobs if log_probs else lprobs.exp()

    def ctc_greedy_decode(self, net_output) -> List[List[int]]:
        lprobs, lens = self.get_ctc_output(net_output)
        return ctc_greedy_decode(lprobs, lens, self.blank_idx)


@register_model_architecture("sigma_s2t_ctc", "sigma_s2t_ctc")
def sigma_s2t_ctc_base(args):
    sigma_s2t_transformer_base(args)


@register_model_architecture("sigma_s2t_ctc", "sigma_s2t_ctc_tiny")
def sigma_s2t_ctc_tiny(args):
    """For tests: d=64, 2 encoder layers."""
    sigma_s2t_transformer_tiny(args)


@register_model_architecture("sigma_s2t_ctc", "sigma_s2t_ctc_s")
def sigma_s2t_ctc_s(args):
    sigma_s2t_transformer_s(args)


@register_model_architecture("sigma_s2t_ctc", "sigma_s2t_ctc_m")
def sigma_s2t_ctc_m(args):
    sigma_s2t_transformer_m(args)


@register_model_architecture("sigma_s2t_ctc", "sigma_s2t_ctc_l")
def sigma_s2t_ctc_l(args):
    sigma_s2t_transformer_l(args)
