"""Attention-entropy / σ / γ metrics for fairseq criteria (see docs/metrics.md for the keys): the
fairseq side -- the flags, when to probe, logging, and the alarm's stop across workers.

Every ``interval`` updates (training only) the criterion's forward runs inside an
AttentionProbe capture; the logging output then carries *sums and counts* under
``sigma/...`` keys (sigma_encoding), which fairseq may add across workers and micro-batches, and
``reduce_sigma_metrics`` logs the means/minima that sigma_reduction computes from them. Other
updates take the plain path: no hook is installed, nothing is computed. The alarm's thresholds
are sigma_reduction's, its snapshot sigma_snapshot's.
"""
import contextlib
import logging
import math
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import torch

from fairseq.logging import metrics
from fairseq.logging.meters import AverageMeter
from omegaconf import II

from sigma_plugin.models.introspection import attention_modules
from sigma_plugin.models.sigma_flags import SigmaOptionError
from sigma_plugin.models.sigma_validation import check_precision_flags
from sigma_plugin.nn import AttentionProbe

from .sigma_encoding import logging_entries
from .sigma_reduction import alarm_hits, alarm_message, has_sigma_entries, reduce_sigma_values
from .sigma_snapshot import resume_advice, save_snapshot, snapshot_path

logger = logging.getLogger(__name__)


def unwrap_model(model):
    while hasattr(model, "module"):  # DDP / fairseq ModuleProxyWrapper
        model = model.module
    return model


def num_updates(model) -> int:
    """The number of the update being computed. sigma_* models record what fairseq passes to
    ``model.set_num_updates`` before each training forward (RecordsUpdates); for other models
    (e.g. stock ``transformer``) it is the count fairseq's trainer logs as the ``num_updates``
    meter of the default aggregator (the same number; none before the first update: 0)."""
    inner = unwrap_model(model)
    if hasattr(inner, "num_updates"):
        return inner.num_updates
    meter = metrics.get_meter("default", "num_updates")
    return int(meter.val) if meter is not None and meter.val is not None else 0


@dataclass
class SigmaLoggingConfig:
    """The --sigma-* flags of every sigma criterion (MT and ASR)."""
    sigma_log_interval: int = field(
        default=100,
        metadata={"help": "every N training updates, log attention entropy per attention type (mean, "
                          "min, per layer), its Theorem 3.1 lower bound, σ and γ; 0 turns it off. "
                          "Other updates pay nothing"})
    sigma_log_summary_only: bool = field(
        default=False, metadata={"help": "log only the summaries (mean/min/max), not the per-layer "
                                         "values (ent_enc_self_L0, gamma_enc_L0, ...): for very deep models"})
    sigma_entropy_alarm: float = field(
        default=0.0, metadata={"help": "entropy-collapse alarm: warn (naming layer, head and update) when a "
                                       "head's mean attention entropy falls below this many nats; 0 = off. "
                                       "Checked at every --sigma-log-interval"})
    sigma_entropy_alarm_fraction: float = field(
        default=0.0, metadata={"help": "also alarm when a head's entropy falls below this fraction of its "
                                       "value at the first check (e.g. 0.2); 0 = off"})
    sigma_entropy_alarm_stop: bool = field(
        default=False, metadata={"help": "on an alarm, save the model to ALARM_DIR/entropy_alarm_u<N>.pt "
                                         "(readable by sigma-inspect) and stop training with a message"})
    sigma_entropy_alarm_dir: str = field(
        default=".", metadata={"help": "where --sigma-entropy-alarm-stop saves the model (default: the "
                                       "current directory; pass your --save-dir)"})
    # fairseq's own precision flags, read to refuse fp16/bf16/AMP training on CPU at start-up
    cpu: bool = II("common.cpu")
    fp16: bool = II("common.fp16")
    bf16: bool = II("common.bf16")
    memory_efficient_fp16: bool = II("common.memory_efficient_fp16")
    memory_efficient_bf16: bool = II("common.memory_efficient_bf16")
    amp: bool = II("common.amp")


class EntropyCollapse(SystemExit):
    """Raised by --sigma-entropy-alarm-stop: ends fairseq-train with a message (exit status 1)."""


class SigmaMetrics:
    """Decides when to probe, runs the probe, writes summable logging entries, raises alarms."""

    def __init__(self, interval: int, per_layer: bool = True, alarm: float = 0.0,
                 alarm_fraction: float = 0.0, alarm_stop: bool = False, alarm_dir: str = "."):
        if interval < 0:
            raise SigmaOptionError(f"--sigma-log-interval must be >= 0 (0 = off), got {interval}")
        if not math.isfinite(alarm) or alarm < 0:
            raise SigmaOptionError(f"--sigma-entropy-alarm must be a number of nats >= 0 (0 = off), got {alarm}")
        if not (math.isfinite(alarm_fraction) and 0 <= alarm_fraction < 1):
            raise SigmaOptionError(f"--sigma-entropy-alarm-fraction must be in [0, 1) (0 = off), got {alarm_fraction}")
        if (alarm or alarm_fraction or alarm_stop) and interval == 0:
            raise SigmaOptionError("the entropy alarm is checked at --sigma-log-interval, which is 0 (off)")
        if alarm_stop and not (alarm or alarm_fraction):
            raise SigmaOptionError("--sigma-entropy-alarm-stop needs --sigma-entropy-alarm or "
                                   "--sigma-entropy-alarm-fraction")
        if alarm_stop and os.path.exists(alarm_dir) and not os.path.isdir(alarm_dir):
            raise SigmaOptionError(f"--sigma-entropy-alarm-dir {alarm_dir!r} is a file, not a directory")
        self.interval = interval
        self.per_layer = per_layer
        self.alarm, self.alarm_fraction = alarm, alarm_fraction
        self.alarm_stop, self.alarm_dir = alarm_stop, alarm_dir
        self._initial: Dict[tuple, float] = {}
        self._history: Dict[tuple, List[tuple]] = {}  # (attention, head) -> [(update, entropy)] at each check
        self._probes: Dict[int, AttentionProbe] = {}

    @classmethod
    def from_cfg(cls, cfg) -> "SigmaMetrics":
        # unresolved interpolations (a config built outside fairseq-train) count as off
        check_precision_flags(cfg, resolved_only=True)
        return cls(cfg.sigma_log_interval, per_layer=not cfg.sigma_log_summary_only,
                   alarm=cfg.sigma_entropy_alarm, alarm_fraction=cfg.sigma_entropy_alarm_fraction,
                   alarm_stop=cfg.sigma_entropy_alarm_stop, alarm_dir=cfg.sigma_entropy_alarm_dir)

    def due(self, model) -> bool:
        if self.interval <= 0 or not model.training:
            return False
        return num_updates(model) % self.interval == 0

    def probe(self, model) -> AttentionProbe:
        inner = unwrap_model(model)
        probe = self._probes.get(id(inner))
        if probe is None:
            modules, groups = attention_modules(inner)
            probe = self._probes[id(inner)] = AttentionProbe(modules, groups)
        return probe

    @contextlib.contextmanager
    def capture(self, model, query_padding_masks: Optional[Dict[str, torch.Tensor]] = None):
        """Yields a dict that, after the block, holds the logging entries to add."""
        entries: Dict[str, float] = {}
        with self.probe(model).capture(query_padding_masks) as records:
            yield entries
        entries.update(logging_entries(unwrap_model(model), records, self.per_layer))
        if self.alarm or self.alarm_fraction:
            self.check_alarm(model, records, entries)

    def check_alarm(self, model, records, entries) -> None:
        """Compare each head's mean entropy (this worker's batch) with the alarm thresholds.

        With several data-parallel workers the stop decision is taken together: if any worker
        alarms, every worker stops (rank 0 writes the snapshot), so none waits in a collective."""
        update = num_updates(model)
        entropies = {name: rec.mean_entropy().tolist() for name, rec in records.items()}
        if self.alarm_fraction and not self._initial:
            self._initial.update(_restored_baseline())  # the first check's entropies, kept in the checkpoint
        known = set(self._initial)
        hits = alarm_hits(entropies, self._initial, self.alarm, self.alarm_fraction)
        if self.alarm_fraction and set(self._initial) != known:
            _keep_baseline(self._initial)
        for name, values in entropies.items():
            for head, ent in enumerate(values):
                self._history.setdefault((name, head), []).append((update, ent))
        entries["sigma/alarms"] = float(len(hits))
        message = None
        if hits:
            message = alarm_message(update, hits)
            logger.warning(message)
        if not self.alarm_stop:
            return
        rank, stop = _any_rank(bool(hits))
        if not stop:
            return
        if message is None:
            message = f"entropy collapse alarm at update {update} on another worker"
        path = save_snapshot(unwrap_model(model), self.alarm_dir, update, message) if rank == 0 else \
            snapshot_path(self.alarm_dir, update)
        _barrier()  # the snapshot is complete before any worker exits
        began = collapse_began(self._history.get(min(hits)[1:3], [])) if hits else None
        raise EntropyCollapse(f"{message}. Training stopped by --sigma-entropy-alarm-stop; the model at this "
                              f"update is in {path} (sigma-inspect reads it); "
                              f"{self.resume_advice(update, began)}")

    def resume_advice(self, update: Optional[int] = None, collapse_began: Optional[int] = None) -> str:
        return resume_advice(self.alarm_dir, update, collapse_began)


# The alarm's baseline (each head's entropy at the first check) lives in a meter aggregator of its own:
# fairseq saves every aggregator in the checkpoint (extra_state["metrics"]) and restores it on resume,
# so --sigma-entropy-alarm-fraction compares with the first check of the run, not of the last resume.
_BASELINE = "sigma_entropy_alarm_baseline"


def _keep_baseline(initial: Dict[tuple, float]) -> None:
    with metrics.aggregate(_BASELINE, new_root=True):
        for (name, head), ent in initial.items():
            if metrics.get_meter(_BASELINE, f"{name}/{head}") is None:
                metrics.log_scalar(f"{name}/{head}", ent, weight=1, round=None)


def _restored_baseline() -> Dict[tuple, float]:
    meters = metrics.get_meters(_BASELINE) or {}
    out = {}
    for key, meter in meters.items():
        name, _, head = key.rpartition("/")
        if isinstance(meter, AverageMeter) and meter.count:
            out[(name, int(head))] = float(meter.avg)
    return out


def collapse_began(history) -> Optional[int]:
    """The update of the last check before a head's entropy began its final fall: walking back from
    the alarm, the first check whose entropy is not above the next one's (None: no earlier check)."""
    if len(history) < 2:
        return None
    i = len(history) - 1
    while i > 0 and history[i - 1][1] > history[i][1]:
        i -= 1
    return history[i][0] if i < len(history) - 1 else None


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized() \
        and torch.distributed.get_world_size() > 1


def _any_rank(flag: bool):
    """(this rank, whether ``flag`` is set on any rank)."""
    if not _distributed():
        return 0, flag
    dist = torch.distributed
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return dist.get_rank(), bool(t.item() > 0)


def _barrier() -> None:
    if _distributed():
        torch.distributed.barrier()


def reduce_sigma_metrics(logging_outputs: List[dict]) -> None:
    """Log the entropy/σ/γ metrics from (possibly summed) logging outputs; no-op off-interval."""
    if not has_sigma_entries(logging_outputs):
        _drop_stale_meters()
        return
    for key, value in reduce_sigma_values(logging_outputs).items():
        metrics.log_scalar(key, value, weight=1, round=4, priority=1000)


_METRIC_PREFIXES = ("ent_", "entn_", "entlb_", "sigmaqk_", "gamma_", "sigma_", "entropy_alarms")


def _drop_stale_meters() -> None:
    """Between probes, remove our meters that fairseq has reset since the last log line and that
    nothing has updated since, so that log lines do not print every metric as None/null.

    This stays a reach-in (OrderedDict deletion plus MetersDict.priorities): fairseq's meters have
    no removal API, a reset meter stays in its aggregator and is printed as null on every later
    line, and the only public rebuild (MetersDict.load_state_dict) loses the derived meters
    (ppl, accuracy). Kept to this one function."""
    for agg in metrics.get_active_aggregators():
        stale = [k for k, m in agg.items()
                 if k.startswith(_METRIC_PREFIXES) and isinstance(m, AverageMeter) and m.count == 0]
        for key in stale:
            OrderedDict.__delitem__(agg, key)
        if stale:
            agg.priorities = [p for p in agg.priorities if p[2] not in stale]
