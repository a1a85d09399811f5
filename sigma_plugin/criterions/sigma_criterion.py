"""The one wrapper every sigma criterion shares: on probe updates the loss's forward runs inside
the attention probe and the logging output gets the ``sigma/...`` entries; reduce_metrics logs
them after the loss's own metrics."""
from typing import Dict, Optional

import torch

from .sigma_metrics import SigmaMetrics, reduce_sigma_metrics


class SigmaMetricsMixin:
    """Put before a fairseq criterion class (whose forward computes the loss); ``__init__`` sets
    ``self.sigma_metrics = SigmaMetrics.from_cfg(cfg)``."""
    sigma_metrics: SigmaMetrics

    def sigma_query_padding_masks(self, sample) -> Optional[Dict[str, torch.Tensor]]:
        """Query padding of the decoder's attention (its input tokens), for the probe's means;
        None for models without one (language models, encoders): self-attention takes its queries'
        padding from its key padding mask."""
        tokens = sample["net_input"].get("prev_output_tokens")
        if tokens is None or getattr(self, "padding_idx", None) is None:
            return None
        return {"decoder": tokens.eq(self.padding_idx)}

    def forward(self, model, sample, reduce=True):
        if not self.sigma_metrics.due(model):
            return super().forward(model, sample, reduce)
        with self.sigma_metrics.capture(model, self.sigma_query_padding_masks(sample)) as entries:
            loss, sample_size, logging_output = super().forward(model, sample, reduce)
        logging_output.update(entries)
        return loss, sample_size, logging_output

    @classmethod
    def reduce_metrics(cls, logging_outputs) -> None:
        # the loss's own reduction never sees the raw sums (some criteria, e.g. wav2vec's, log
        # every key they are given)
        super().reduce_metrics([{k: v for k, v in log.items() if not k.startswith("sigma/")}
                                for log in logging_outputs])
        reduce_sigma_metrics(logging_outputs)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True  # every logged value is a sum (sigma_encoding); reduce_metrics divides
