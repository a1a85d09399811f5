"""`label_smoothed_cross_entropy_with_sigma`: fairseq's label-smoothed CE plus, every
--sigma-log-interval updates, attention entropy, its lower bound, σ and γ (docs/metrics.md)."""

from dataclasses import dataclass

from fairseq.criterions import register_criterion
from fairseq.criterions.label_smoothed_cross_entropy import (
    LabelSmoothedCrossEntropyCriterion, LabelSmoothedCrossEntropyCriterionConfig)

from .sigma_criterion import SigmaMetricsMixin
from .sigma_metrics import SigmaLoggingConfig, SigmaMetrics


@dataclass
class LabelSmoothedCrossEntropyWithSigmaConfig(LabelSmoothedCrossEntropyCriterionConfig, SigmaLoggingConfig):
    pass


@register_criterion("label_smoothed_cross_entropy_with_sigma",
                    dataclass=LabelSmoothedCrossEntropyWithSigmaConfig)
class LabelSmoothedCrossEntropyWithSigmaCriterion(SigmaMetricsMixin, LabelSmoothedCrossEntropyCriterion):
    def __init__(self, cfg: LabelSmoothedCrossEntropyWithSigmaConfig, task):
        super().__init__(task, cfg.sentence_avg, cfg.label_smoothing, cfg.ignore_prefix_size, cfg.report_accuracy)
        self.sigma_metrics = SigmaMetrics.from_cfg(cfg)
