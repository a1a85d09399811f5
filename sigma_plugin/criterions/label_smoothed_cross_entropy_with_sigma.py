"""`label_smoothed_cross_entropy_with_sigma`: fairseq's label-smoothed CE plus, every
--sigma-log-interval updates, attention entropy, its lower bound, σ and γ (docs/metrics.md)."""

from dataclasses import dataclass

from fairseq.criterions import register_criterion
from fairseq.criterions.label_smoothed_cross_entropy import (
    LabelSmoothedCrossEntropyCriterion, LabelSmoothedCrossEntropyCriterionConfig)

from .sigma_metrics import SigmaLoggingConfig, SigmaMetrics, reduce_sigma_metrics


@dataclass
class LabelSmoothedCrossEntropyWithSigmaConfig(LabelSmoothedCrossEntropyCriterionConfig, SigmaLoggingConfig):
    pass


@register_criterion("label_smoothed_cross_entropy_with_sigma",
                    dataclass=LabelSmoothedCrossEntropyWithSigmaConfig)
class LabelSmoothedCrossEntropyWithSigmaCriterion(LabelSmoothedCrossEntropyCriterion):
    def __init__(self, cfg: LabelSmoothedCrossEntropyWithSigmaConfig, task):
        super().__init__(task, cfg.sentence_avg, cfg.label_smoothing, cfg.ignore_prefix_size, cfg.report_accuracy)
        self.sigma_metrics = SigmaMetrics.from_cfg(cfg)

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
