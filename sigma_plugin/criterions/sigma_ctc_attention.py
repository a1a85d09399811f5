"""`sigma_ctc_attention`: joint CTC + attention loss for sigma_s2t_transformer (Kim et al. 2017,
as in ESPnet): loss = λ·CTC + (1 − λ)·label-smoothed CE, λ = --sigma-ctc-weight, both summed
over the batch. λ > 0 makes the model build its CTC head (encoder.ctc_proj). Entropy/σ/γ
metrics every --sigma-log-interval updates (docs/metrics.md).
"""

from dataclasses import dataclass, field

import torch

from fairseq import utils
from fairseq.criterions import register_criterion
from fairseq.criterions.label_smoothed_cross_entropy import (
    LabelSmoothedCrossEntropyCriterion, LabelSmoothedCrossEntropyCriterionConfig)

from .sigma_criterion import SigmaMetricsMixin
from .sigma_ctc import ctc_loss_sum, greedy_error_counts, log_ctc_metrics
from .sigma_metrics import SigmaLoggingConfig, SigmaMetrics


@dataclass
class SigmaCtcAttentionConfig(LabelSmoothedCrossEntropyCriterionConfig, SigmaLoggingConfig):
    sigma_ctc_weight: float = field(
        default=0.3, metadata={"help": "λ in λ·CTC + (1−λ)·attention loss, in [0, 1); 0 = attention "
                                       "only (no CTC head is built)"})
    sigma_ctc_zero_infinity: bool = field(
        default=True, metadata={"help": "zero the CTC loss of utterances too short for their targets"})


class CtcAttentionCriterion(LabelSmoothedCrossEntropyCriterion):
    """λ·CTC + (1 − λ)·label-smoothed CE (no probe; see SigmaCtcAttentionCriterion).

    Not fairseq's ``label_smoothed_cross_entropy_with_ctc``: that one adds λ·CTC to the full
    attention loss (no interpolation), keeps ``</s>`` in the CTC targets, and always uses
    zero_infinity."""

    def __init__(self, cfg: SigmaCtcAttentionConfig, task):
        super().__init__(task, cfg.sentence_avg, cfg.label_smoothing, cfg.ignore_prefix_size, cfg.report_accuracy)
        if not 0.0 <= cfg.sigma_ctc_weight < 1.0:
            raise ValueError(f"--sigma-ctc-weight must be in [0, 1), got {cfg.sigma_ctc_weight}")
        self.dictionary = task.target_dictionary
        self.ctc_weight = cfg.sigma_ctc_weight
        self.zero_infinity = cfg.sigma_ctc_zero_infinity

    def forward(self, model, sample, reduce=True):
        net_output = model(**sample["net_input"])
        att_loss, nll_loss = self.compute_loss(model, net_output, sample, reduce=reduce)
        loss = att_loss
        ctc_loss = torch.zeros_like(att_loss)
        if self.ctc_weight > 0:
            lprobs, lengths = model.get_ctc_output(net_output, sample)
            d = self.dictionary
            ctc_loss = ctc_loss_sum(lprobs, lengths, sample, d.bos(), d.pad(), d.eos(), self.zero_infinity)
            loss = self.ctc_weight * ctc_loss + (1.0 - self.ctc_weight) * att_loss
        sample_size = sample["target"].size(0) if self.sentence_avg else sample["ntokens"]
        logging_output = {
            "loss": utils.item(loss.data), "nll_loss": utils.item(nll_loss.data),
            "att_loss": utils.item(att_loss.data), "ctc_loss": utils.item(ctc_loss.data),
            "ntokens": sample["ntokens"], "nsentences": sample["target"].size(0),
            "sample_size": sample_size,
        }
        if self.report_accuracy:
            n_correct, total = self.compute_accuracy(model, net_output, sample)
            logging_output["n_correct"] = utils.item(n_correct.data)
            logging_output["total"] = utils.item(total.data)
        if self.ctc_weight > 0 and not model.training:
            with torch.no_grad():
                logging_output.update(greedy_error_counts(lprobs, lengths, sample, self.dictionary))
        return loss, sample_size, logging_output

    @classmethod
    def reduce_metrics(cls, logging_outputs) -> None:
        super().reduce_metrics(logging_outputs)
        log_ctc_metrics(logging_outputs)


@register_criterion("sigma_ctc_attention", dataclass=SigmaCtcAttentionConfig)
class SigmaCtcAttentionCriterion(SigmaMetricsMixin, CtcAttentionCriterion):
    def __init__(self, cfg: SigmaCtcAttentionConfig, task):
        super().__init__(cfg, task)
        self.sigma_metrics = SigmaMetrics.from_cfg(cfg)
