"""`label_smoothed_cross_entropy_with_sigma`: fairseq's label-smoothed CE plus, every
--sigma-log-interval updates, attention entropy, its lower bound, σ and γ (docs/metrics.md)."""

from dataclasses import dataclass, field

from fairseq.criterions import register_criterion
from fairseq.criterions.label_smoothed_cross_entropy import (
    LabelSmoothedCrossEntropyCriterion, LabelSmoothedCrossEntropyCriterionConfig)

from .sigma_metrics import SigmaMetrics, reduce_sigma_metrics


@dataclass
class SigmaLoggingConfig:
    sigma_log_interval: int = field(
        default=100,
        metadata={"help": "every N training updates, log attention entropy per attention type (mean, "
                          "min, per layer), its Theorem 3.1 lower bound, σ and γ; 0 turns it off. "
                          "Other updates pay nothing"})
    sigma_log_summary_only: bool = field(
        default=False, metadata={"help": "log only the summaries (mean/min/max), not the per-layer "
                                         "values (ent_enc_self_L0, gamma_enc_L0, ...): for very deep models"})


@dataclass
class LabelSmoothedCrossEntropyWithSigmaConfig(LabelSmoothedCrossEntropyCriterionConfig, SigmaLoggingConfig):
    pass


@register_criterion("label_smoothed_cross_entropy_with_sigma",
                    dataclass=LabelSmoothedCrossEntropyWithSigmaConfig)
class LabelSmoothedCrossEntropyWithSigmaCriterion(LabelSmoothedCrossEntropyCriterion):
    def __init__(self, task, sentence_avg, label_smoothing, ignore_prefix_size=0, report_accuracy=False,
                 sigma_log_interval=100, sigma_log_summary_only=False):
        super().__init__(task, sentence_avg, label_smoothing, ignore_prefix_size, report_accuracy)
        self.sigma_metrics = SigmaMetrics(sigma_log_interval, per_layer=not sigma_log_summary_only)

    def forward(self, model, sample, reduce=True):
        if not self.sigma_metrics.due(model):
            return super().forward(model, sample, reduce)
        decoder_pad = sample["net_input"]["prev_output_tokens"].eq(self.padding_idx)
        with self.sigma_metrics.capture(model, {"decoder": decoder_pad}) as entries:
            loss, sample_size, logging_output = super().forward(model, sample, reduce)
        logging_output.update(entries)
        return loss, sample_size, logging_output

    @classmethod
    def reduce_metrics(cls, logging_outputs) -> None:
        super().reduce_metrics(logging_outputs)
        reduce_sigma_metrics(logging_outputs)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True
