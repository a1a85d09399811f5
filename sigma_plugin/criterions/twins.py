"""``<criterion>_with_sigma`` for every registered fairseq criterion: the stock criterion (its loss,
its flags) with the entropy/σ/γ metrics of sigma_metrics logged every --sigma-log-interval
updates -- what the ``sigma_<arch>`` model twins are trained with (``cross_entropy_with_sigma`` for
language models, ``masked_lm_with_sigma`` for RoBERTa, ``ctc_with_sigma`` for wav2vec2 CTC, ...).
A criterion without a dataclass (the few legacy argparse ones) gets no twin."""
from __future__ import annotations

import dataclasses
import logging
import sys
from typing import Optional

from fairseq.criterions import CRITERION_DATACLASS_REGISTRY, CRITERION_REGISTRY, register_criterion

from .sigma_criterion import SigmaMetricsMixin
from .sigma_metrics import SigmaLoggingConfig, SigmaMetrics

logger = logging.getLogger(__name__)

SUFFIX = "_with_sigma"


class SigmaCriterionTwin(SigmaMetricsMixin):
    """Put before a stock criterion class: builds the stock criterion, then its SigmaMetrics."""

    @classmethod
    def build_criterion(cls, cfg, task):
        criterion = super().build_criterion(cfg, task)
        criterion.sigma_metrics = SigmaMetrics.from_cfg(cfg)
        return criterion


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def criterion_twin(name: str) -> Optional[type]:
    """Register ``<name>_with_sigma`` (once) and return its class; None for a criterion without a
    dataclass. The config class is ``<Name>WithSigmaConfig``, the criterion ``<Name>WithSigmaCriterion``,
    both importable from this module."""
    twin = name + SUFFIX
    if twin in CRITERION_REGISTRY:
        return CRITERION_REGISTRY[twin]
    stock_dc = CRITERION_DATACLASS_REGISTRY.get(name)
    if stock_dc is None:
        return None
    module = sys.modules[__name__]
    dc = dataclasses.make_dataclass(f"{_camel(name)}WithSigmaConfig", [], bases=(stock_dc, SigmaLoggingConfig))
    cls = type(f"{_camel(name)}WithSigmaCriterion", (SigmaCriterionTwin, CRITERION_REGISTRY[name]), {
        "__doc__": f"fairseq's {name!r} criterion with the --sigma-* entropy/σ/γ metrics."})
    for obj in (dc, cls):
        obj.__module__ = __name__
        setattr(module, obj.__name__, obj)
    return register_criterion(twin, dataclass=dc)(cls)


def register_criterion_twins() -> int:
    """A twin for every stock criterion registered now; idempotent. Returns how many were added."""
    added = 0
    for name in list(CRITERION_REGISTRY):
        if name.endswith(SUFFIX) or name.startswith("sigma_") or name + SUFFIX in CRITERION_REGISTRY:
            continue
        try:
            added += criterion_twin(name) is not None
        except Exception as e:  # a criterion class that cannot be subclassed this way: no twin
            logger.debug("no %s%s: %s", name, SUFFIX, e)
    return added
