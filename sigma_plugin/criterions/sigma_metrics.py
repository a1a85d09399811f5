"""Attention-entropy / σ / γ metrics for fairseq criteria (see docs/metrics.md for the keys).

Every ``interval`` updates (training only) the criterion's forward runs inside an
AttentionProbe capture; the logging output then carries *sums and counts* under
``sigma/...`` keys, which fairseq may add across workers and micro-batches, and
``reduce_sigma_metrics`` turns them into the logged means/minima. Other updates take
the plain path: no hook is installed, nothing is computed.
"""
import contextlib
import glob
import logging
import math
import os
import re
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import torch

from fairseq.logging import metrics
from omegaconf import II

from sigma_plugin.nn import AttentionProbe, sigma_reparam_modules
from sigma_plugin.models.introspection import attention_modules
from sigma_plugin.models.sigma_flags import SigmaOptionError
from sigma_plugin.models.sigma_validation import check_precision_flags

KINDS = ("enc_self", "dec_self", "dec_cross")
# layers / transformer_layers: fairseq's names in MT stacks and in the S2T encoder
_LAYER_RE = re.compile(r"^(encoder|decoder)\.(?:layers|transformer_layers)\.(\d+)\.")
_SIDE = {"encoder": "enc", "decoder": "dec"}


def unwrap_model(model):
    while hasattr(model, "module"):  # DDP / fairseq ModuleProxyWrapper
        model = model.module
    return model


logger = logging.getLogger(__name__)


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
        return _num_updates(unwrap_model(model)) % self.interval == 0

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
        entries.update(self.logging_entries(model, records))
        if self.alarm or self.alarm_fraction:
            self.check_alarm(model, records, entries)

    def check_alarm(self, model, records, entries) -> None:
        """Compare each head's mean entropy (this worker's batch) with the alarm thresholds.

        With several data-parallel workers the stop decision is taken together: if any worker
        alarms, every worker stops (rank 0 writes the snapshot), so none waits in a collective."""
        update = _num_updates(unwrap_model(model))
        hits = []
        for name, rec in records.items():
            for head, ent in enumerate(rec.mean_entropy().tolist()):
                initial = self._initial.setdefault((name, head), ent)
                limit = max(self.alarm, self.alarm_fraction * initial)
                if ent < limit:
                    hits.append((ent, name, head, initial, limit))
        entries["sigma/alarms"] = float(len(hits))
        message = None
        if hits:
            ent, name, head, initial, limit = min(hits)
            kind, layer = name.split(".")
            message = (f"entropy collapse alarm at update {update}: {kind} layer {layer} head {head} has attention "
                       f"entropy {ent:.4f} nats < {limit:.4f} (first check: {initial:.4f}); "
                       f"{len(hits)} head(s) below the threshold")
            logger.warning(message)
        if not self.alarm_stop:
            return
        rank, stop = _any_rank(bool(hits))
        if not stop:
            return
        if message is None:
            message = f"entropy collapse alarm at update {update} on another worker"
        path = self.save_snapshot(model, update, message) if rank == 0 else \
            os.path.join(self.alarm_dir, f"entropy_alarm_u{update}.pt")
        _barrier()  # the snapshot is complete before any worker exits
        raise EntropyCollapse(f"{message}. Training stopped by --sigma-entropy-alarm-stop; the model at this "
                              f"update is in {path} (sigma-inspect reads it); {self.resume_advice()}")

    def resume_advice(self) -> str:
        found = sorted(glob.glob(os.path.join(self.alarm_dir, "checkpoint*.pt")), key=os.path.getmtime)
        last = os.path.join(self.alarm_dir, "checkpoint_last.pt")
        if os.path.isfile(last):
            return f"resume from {last} with a lower --lr, or drop --sigma-entropy-alarm-stop."
        if found:
            return f"resume from {found[-1]} (the newest checkpoint there) with a lower --lr, or drop " \
                   f"--sigma-entropy-alarm-stop."
        return (f"no checkpoint has been saved in {self.alarm_dir} yet: restart with a lower --lr (pass "
                f"--sigma-entropy-alarm-dir your --save-dir to be pointed at its checkpoints), or drop "
                f"--sigma-entropy-alarm-stop.")

    def save_snapshot(self, model, update: int, message: str) -> str:
        """The model at this update as a fairseq checkpoint (no optimizer state): sigma-inspect,
        sigma-export and fairseq-generate read it."""
        os.makedirs(self.alarm_dir, exist_ok=True)
        path = os.path.join(self.alarm_dir, f"entropy_alarm_u{update}.pt")
        inner = unwrap_model(model)
        args = getattr(inner, "sigma_args", None) or getattr(inner, "args", None)
        state = {
            "args": _plain_namespace(args),
            "cfg": None,
            "model": inner.state_dict(),
            "optimizer_history": [{"criterion_name": "entropy_alarm", "optimizer_name": "none",
                                   "lr_scheduler_state": {"best": None}, "num_updates": update}],
            "extra_state": {"train_iterator": {"epoch": 0, "iterations_in_epoch": 0}, "entropy_alarm": message},
            "last_optimizer_state": None,
        }
        tmp = path + ".tmp"
        torch.save(state, tmp)
        os.replace(tmp, path)
        return path

    def logging_entries(self, model, records) -> Dict[str, float]:
        out: Dict[str, float] = {"sigma/workers": 1.0, "sigma/per_layer": float(self.per_layer)}
        for name, rec in records.items():
            kind, layer = name.split(".")
            out[f"sigma/n/{kind}/{layer}"] = rec.count
            for h in range(rec.heads):
                out[f"sigma/ent/{kind}/{layer}/{h}"] = float(rec.entropy_sum[h])
                out[f"sigma/entn/{kind}/{layer}/{h}"] = float(rec.norm_entropy_sum[h])
                out[f"sigma/entlb/{kind}/{layer}/{h}"] = float(rec.bound_sum[h])
                out[f"sigma/qk/{kind}/{layer}/{h}"] = float(rec.sigma_qk[h])
        for qname, _, p in sigma_reparam_modules(unwrap_model(model)):
            m = _LAYER_RE.match(qname)
            group = f"{_SIDE[m.group(1)]}/{m.group(2)}" if m else "other/0"
            out[f"sigma/gamma/{group}"] = out.get(f"sigma/gamma/{group}", 0.0) + float(p.gamma.detach())
            out[f"sigma/sigma/{group}"] = out.get(f"sigma/sigma/{group}", 0.0) + float(p.last_sigma)
            out[f"sigma/count/{group}"] = out.get(f"sigma/count/{group}", 0.0) + 1.0
        return out


class _UpdateCounter(torch.nn.Module):
    """Parameter-free submodule that remembers the update number fairseq passes down
    through ``model.set_num_updates`` (for models, like stock ``transformer``, that keep none)."""

    def __init__(self):
        super().__init__()
        self.num_updates = 0

    def set_num_updates(self, num_updates):
        self.num_updates = num_updates


def _num_updates(model) -> int:
    if hasattr(model, "num_updates"):  # sigma_* models record it themselves (RecordsUpdates)
        return model.num_updates
    counter = getattr(model, "sigma_update_counter", None)
    if counter is None:  # first call happens after this update's set_num_updates: start at 0
        counter = _UpdateCounter()
        model.add_module("sigma_update_counter", counter)
    return counter.num_updates


def _plain_namespace(args):
    """The model arguments with plain values only (what torch's weights_only loading accepts)."""
    import argparse

    def plain(v):
        if v is None or isinstance(v, (str, int, float, bool)):
            return True
        if isinstance(v, (list, tuple)):
            return all(plain(x) for x in v)
        if isinstance(v, dict):
            return all(isinstance(k, str) and plain(x) for k, x in v.items())
        return False
    if args is None:
        return None
    return argparse.Namespace(**{k: v for k, v in vars(args).items() if plain(v)})


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


def _total(logging_outputs: List[dict], key: str) -> float:
    return float(sum(float(log.get(key, 0.0)) for log in logging_outputs))


def reduce_sigma_metrics(logging_outputs: List[dict]) -> None:
    """Log the entropy/σ/γ metrics from (possibly summed) logging outputs; no-op off-interval."""
    keys = set()
    for log in logging_outputs:
        keys.update(k for k in log if k.startswith("sigma/"))
    if not keys:
        _drop_stale_meters()
        return
    workers = max(_total(logging_outputs, "sigma/workers"), 1.0)
    tot = {k: _total(logging_outputs, k) for k in keys}
    per_layer = tot.get("sigma/per_layer", 0.0) > 0

    per_head = defaultdict(dict)  # (stat, kind) -> {(layer, head): value}
    for k, v in tot.items():
        parts = k.split("/")
        if parts[1] in ("ent", "entn", "entlb", "qk"):
            _, stat, kind, layer, head = parts
            if stat == "qk":
                per_head[(stat, kind)][(int(layer), int(head))] = v / workers
            else:
                n = tot.get(f"sigma/n/{kind}/{layer}", 0.0)
                if n > 0:
                    per_head[(stat, kind)][(int(layer), int(head))] = v / n
    for kind in KINDS:
        ent = per_head.get(("ent", kind))
        if ent:
            _log(f"ent_{kind}_mean", sum(ent.values()) / len(ent))
            _log(f"ent_{kind}_min", min(ent.values()))
            if per_layer:
                for layer, value in _by_layer(ent, mean=True).items():
                    _log(f"ent_{kind}_L{layer}", value)
        entn = per_head.get(("entn", kind))
        if entn:
            _log(f"entn_{kind}_mean", sum(entn.values()) / len(entn))
            _log(f"entn_{kind}_min", min(entn.values()))
        lb = per_head.get(("entlb", kind))
        if lb:
            _log(f"entlb_{kind}_mean", sum(lb.values()) / len(lb))
        qk = per_head.get(("qk", kind))
        if qk:
            _log(f"sigmaqk_{kind}_max", max(qk.values()))
            if per_layer:
                for layer, value in _by_layer(qk, mean=False).items():
                    _log(f"sigmaqk_{kind}_L{layer}", value)

    gamma_sum = gamma_n = 0.0
    layer_gammas = []
    for k, n in tot.items():
        if not k.startswith("sigma/count/") or n <= 0:
            continue
        group = k[len("sigma/count/"):]
        g, s = tot[f"sigma/gamma/{group}"], tot[f"sigma/sigma/{group}"]
        gamma_sum, gamma_n = gamma_sum + g, gamma_n + n
        layer_gammas.append(g / n)
        side, layer = group.split("/")
        if per_layer:
            _log(f"gamma_{side}_L{layer}" if side != "other" else "gamma_other", g / n)
            _log(f"sigma_{side}_L{layer}" if side != "other" else "sigma_other", s / n)
    if gamma_n > 0:
        _log("gamma_mean", gamma_sum / gamma_n)
        _log("gamma_max", max(layer_gammas))
    if "sigma/alarms" in tot:
        _log("entropy_alarms", tot["sigma/alarms"])


_METRIC_PREFIXES = ("ent_", "entn_", "entlb_", "sigmaqk_", "gamma_", "sigma_", "entropy_alarms")


def _drop_stale_meters() -> None:
    """Between probes, remove our meters that fairseq has reset since the last log line and that
    nothing has updated since, so that log lines do not print every metric as None/null."""
    from fairseq.logging.meters import AverageMeter
    for agg in metrics.get_active_aggregators():
        stale = [k for k, m in agg.items()
                 if k.startswith(_METRIC_PREFIXES) and isinstance(m, AverageMeter) and m.count == 0]
        for key in stale:
            OrderedDict.__delitem__(agg, key)
        if stale:
            agg.priorities = [p for p in agg.priorities if p[2] not in stale]


def _by_layer(values: Dict, mean: bool) -> Dict[int, float]:
    grouped = defaultdict(list)
    for (layer, _), v in values.items():
        grouped[layer].append(v)
    return {l: (sum(v) / len(v) if mean else max(v)) for l, v in sorted(grouped.items())}


def _log(key: str, value: float) -> None:
    metrics.log_scalar(key, value, weight=1, round=4, priority=1000)
