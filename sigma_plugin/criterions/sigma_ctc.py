"""`sigma_ctc`: CTC loss for models with a CTC output (sigma_s2t_ctc, or sigma_s2t_transformer
with a CTC head), plus the entropy/σ/γ metrics every --sigma-log-interval updates
(docs/metrics.md) and, on validation, greedy-decoding token/word error counts.

The blank is the dictionary's ``<s>``; targets are the reference tokens without ``</s>``.
"""

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from omegaconf import II
from torchaudio.functional import edit_distance

from fairseq import utils
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import FairseqDataclass
from fairseq.logging import metrics

from sigma_plugin.decoding.ctc_greedy import ctc_greedy_decode

from .sigma_criterion import SigmaMetricsMixin
from .sigma_metrics import SigmaLoggingConfig, SigmaMetrics


def ctc_targets(sample, pad: int, eos: int):
    """Flattened CTC targets and their lengths: target tokens minus padding and </s>."""
    target = sample["target"]
    keep = target.ne(pad) & target.ne(eos)
    return target.masked_select(keep), keep.sum(-1)


def ctc_loss_sum(lprobs, input_lengths, sample, blank: int, pad: int, eos: int, zero_infinity: bool):
    targets, target_lengths = ctc_targets(sample, pad, eos)
    with torch.backends.cudnn.flags(enabled=False):  # cuDNN CTC has extra constraints on lengths
        return F.ctc_loss(lprobs, targets, input_lengths, target_lengths, blank=blank,
                          reduction="sum", zero_infinity=zero_infinity)


def greedy_error_counts(lprobs, lengths, sample, dictionary):
    """Token edit errors / reference tokens and word errors / reference words (greedy CTC)."""
    hyps = ctc_greedy_decode(lprobs, lengths, dictionary.bos())
    pad, eos = dictionary.pad(), dictionary.eos()
    out = {"tok_errors": 0, "tok_total": 0, "word_errors": 0, "word_total": 0}
    for hyp, ref in zip(hyps, sample["target"].tolist()):
        ref = [t for t in ref if t not in (pad, eos)]
        out["tok_errors"] += edit_distance(hyp, ref)
        out["tok_total"] += len(ref)
        hyp_words = dictionary.string(torch.tensor(hyp, dtype=torch.long), "sentencepiece").split()
        ref_words = dictionary.string(torch.tensor(ref, dtype=torch.long), "sentencepiece").split()
        out["word_errors"] += edit_distance(hyp_words, ref_words)
        out["word_total"] += len(ref_words)
    return out


def log_ctc_metrics(logging_outputs) -> None:
    """ctc_loss (base 2, per sample_size unit) and, if present, validation tok/word error rates."""
    def total(key):
        return sum(log.get(key, 0) for log in logging_outputs)
    sample_size = total("sample_size")
    if sample_size > 0:
        metrics.log_scalar("ctc_loss", total("ctc_loss") / sample_size / math.log(2), sample_size, round=3)
    for kind in ("tok", "word"):
        n = total(f"{kind}_total")
        if n > 0:
            metrics.log_scalar(f"ctc_{kind}_err", 100.0 * total(f"{kind}_errors") / n, n, round=2)


@dataclass
class SigmaCtcConfig(FairseqDataclass, SigmaLoggingConfig):
    zero_infinity: bool = field(
        default=True, metadata={"help": "zero the loss of utterances too short for their targets "
                                        "(instead of inf); they are then ignored"})
    sentence_avg: bool = II("optimization.sentence_avg")


class CtcCriterion(FairseqCriterion):
    """The CTC loss of a model with ``get_ctc_output`` (no probe; see SigmaCtcCriterion).

    Not fairseq's ``ctc`` criterion: that one takes the input lengths from
    ``net_input["src_lengths"]`` (speech frames before the S2T encoder's subsampling), counts
    ``</s>`` in the target lengths while dropping it from the targets, and reads the model's
    output through ``get_normalized_probs`` (wav2vec-style models)."""

    def __init__(self, cfg: SigmaCtcConfig, task):
        super().__init__(task)
        self.dictionary = task.target_dictionary
        self.zero_infinity = cfg.zero_infinity
        self.sentence_avg = cfg.sentence_avg

    def forward(self, model, sample, reduce=True):
        net_output = model(**sample["net_input"])
        lprobs, lengths = model.get_ctc_output(net_output, sample)
        d = self.dictionary
        loss = ctc_loss_sum(lprobs, lengths, sample, d.bos(), d.pad(), d.eos(), self.zero_infinity)
        ntokens = sample["ntokens"]
        sample_size = sample["target"].size(0) if self.sentence_avg else ntokens
        logging_output = {"loss": utils.item(loss.data), "ctc_loss": utils.item(loss.data),
                          "ntokens": ntokens, "nsentences": sample["target"].size(0),
                          "sample_size": sample_size}
        if not model.training:
            with torch.no_grad():
                logging_output.update(greedy_error_counts(lprobs, lengths, sample, d))
        return loss, sample_size, logging_output

    @classmethod
    def reduce_metrics(cls, logging_outputs) -> None:
        loss_sum = sum(log.get("loss", 0) for log in logging_outputs)
        sample_size = sum(log.get("sample_size", 0) for log in logging_outputs)
        metrics.log_scalar("loss", loss_sum / max(sample_size, 1) / math.log(2), sample_size, round=3)
        log_ctc_metrics(logging_outputs)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True


@register_criterion("sigma_ctc", dataclass=SigmaCtcConfig)
class SigmaCtcCriterion(SigmaMetricsMixin, CtcCriterion):
    def __init__(self, cfg: SigmaCtcConfig, task):
        super().__init__(cfg, task)
        self.sigma_metrics = SigmaMetrics.from_cfg(cfg)

    def sigma_query_padding_masks(self, sample):
        return None  # encoder only: the probe takes the encoder's padding from the model
