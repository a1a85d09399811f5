"""Attention-entropy / σ / γ metrics for fairseq criteria (see docs/metrics.md for the keys).

Every ``interval`` updates (training only) the criterion's forward runs inside an
AttentionProbe capture; the logging output then carries *sums and counts* under
``sigma/...`` keys, which fairseq may add across workers and micro-batches, and
``reduce_sigma_metrics`` turns them into the logged means/minima. Other updates take
the plain path: no hook is installed, nothing is computed.
"""
from __future__ import annotations

import contextlib
import re
from collections import defaultdict
from typing import Dict, List, Optional

import torch

from fairseq.logging import metrics

from sigma_plugin.nn import AttentionProbe, sigma_reparam_modules
from sigma_plugin.models.sigma_options import attention_modules

KINDS = ("enc_self", "dec_self", "dec_cross")
_LAYER_RE = re.compile(r"^(encoder|decoder)\.layers\.(\d+)\.")
_SIDE = {"encoder": "enc", "decoder": "dec"}


def unwrap_model(model):
    while hasattr(model, "module"):  # DDP / fairseq ModuleProxyWrapper
        model = model.module
    return model


class SigmaMetrics:
    """Decides when to probe, runs the probe, and writes summable logging entries."""

    def __init__(self, interval: int, per_layer: bool = True):
        if interval < 0:
            raise ValueError(f"--sigma-log-interval must be >= 0 (0 = off), got {interval}")
        self.interval = interval
        self.per_layer = per_layer
        self._probes: Dict[int, AttentionProbe] = {}

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

    def logging_entries(self, model, records) -> Dict[str, float]:
        out: Dict[str, float] = {"sigma/workers": 1.0, "sigma/per_layer": float(self.per_layer)}
        for name, rec in records.items():
            kind, layer = name.split(".")
            out[f"sigma/n/{kind}/{layer}"] = rec.count
            for h in range(rec.heads):
                out[f"sigma/ent/{kind}/{layer}/{h}"] = float(rec.entropy_sum[h])
                out[f"sigma/entlb/{kind}/{layer}/{h}"] = float(rec.bound_sum[h])
                out[f"sigma/qk/{kind}/{layer}/{h}"] = float(rec.sigma_qk[h])
        for qname, _, p in sigma_reparam_modules(unwrap_model(model)):
            m = _LAYER_RE.match(qname)
            group = f"{_SIDE[m.group(1)]}/{m.group(2)}" if m else "other/0"
            out[f"sigma/gamma/{group}"] = out.get(f"sigma/gamma/{group}", 0.0) + float(p.gamma.detach())
            out[f"sigma/sigma/{group}"] = out.get(f"sigma/sigma/{group}", 0.0) + p.last_sigma
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
    if hasattr(model, "num_updates"):  # sigma_* models record it themselves
        return model.num_updates
    counter = getattr(model, "sigma_update_counter", None)
    if counter is None:  # first call happens after this update's set_num_updates: start at 0
        counter = _UpdateCounter()
        model.add_module("sigma_update_counter", counter)
    return counter.num_updates


def _total(logging_outputs: List[dict], key: str) -> float:
    return float(sum(float(log.get(key, 0.0)) for log in logging_outputs))


def reduce_sigma_metrics(logging_outputs: List[dict]) -> None:
    """Log the entropy/σ/γ metrics from (possibly summed) logging outputs; no-op off-interval."""
    keys = set()
    for log in logging_outputs:
        keys.update(k for k in log if k.startswith("sigma/"))
    if not keys:
        return
    workers = max(_total(logging_outputs, "sigma/workers"), 1.0)
    tot = {k: _total(logging_outputs, k) for k in keys}
    per_layer = tot.get("sigma/per_layer", 0.0) > 0

    per_head = defaultdict(dict)  # (stat, kind) -> {(layer, head): value}
    for k, v in tot.items():
        parts = k.split("/")
        if parts[1] in ("ent", "entlb", "qk"):
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


def _by_layer(values: Dict, mean: bool) -> Dict[int, float]:
    grouped = defaultdict(list)
    for (layer, _), v in values.items():
        grouped[layer].append(v)
    return {l: (sum(v) / len(v) if mean else max(v)) for l, v in sorted(grouped.items())}


def _log(key: str, value: float) -> None:
    metrics.log_scalar(key, value, weight=1, round=4, priority=1000)
