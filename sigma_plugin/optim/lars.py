"""`--optimizer lars` for fairseq (the optimizer itself is sigma_plugin.nn.lars.LARS)."""

from dataclasses import dataclass, field
from typing import List

from omegaconf import II

from fairseq.dataclass import FairseqDataclass
from fairseq.optim import FairseqOptimizer, register_optimizer

from sigma_plugin.nn.lars import LARS


@dataclass
class FairseqLARSConfig(FairseqDataclass):
    momentum: float = field(default=0.9, metadata={"help": "momentum factor μ"})
    weight_decay: float = field(default=0.0, metadata={"help": "weight decay (not applied to 1-D tensors)"})
    lars_trust_coefficient: float = field(
        default=0.001, metadata={"help": "η in trust = η·‖w‖/‖g + wd·w‖ (per tensor)"})
    lars_adapt_1d: bool = field(
        default=False, metadata={"help": "also apply trust ratio and weight decay to 1-D tensors "
                                         "(biases, LayerNorm, γ); off by default"})
    lr: List[float] = II("optimization.lr")


@register_optimizer("lars", dataclass=FairseqLARSConfig)
class FairseqLARS(FairseqOptimizer):
    def __init__(self, cfg: FairseqLARSConfig, params):
        super().__init__(cfg)
        self._optimizer = LARS(params, **self.optimizer_config)

    @property
    def optimizer_config(self):
        return {
            "lr": self.cfg.lr[0],
            "momentum": self.cfg.momentum,
            "weight_decay": self.cfg.weight_decay,
            "trust_coefficient": self.cfg.lars_trust_coefficient,
            "exclude_1d": not self.cfg.lars_adapt_1d,
        }

    @property
    def supports_flat_params(self):
        return False
