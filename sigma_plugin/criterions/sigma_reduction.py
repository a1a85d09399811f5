"""The maths of the entropy/σ/γ metrics, without fairseq: from the summed ``sigma/...`` logging
entries to the logged values, and the entropy-collapse alarm's thresholds (docs/metrics.md)."""
from collections import OrderedDict, defaultdict
from typing import Dict, Iterable, List, Mapping, Sequence, Tuple

KINDS = ("enc_self", "dec_self", "dec_cross")

# (entropy, attention name "kind.layer", head, entropy at the first check, threshold)
AlarmHit = Tuple[float, str, int, float, float]


def _total(logging_outputs: Sequence[Mapping], key: str) -> float:
    return float(sum(float(log.get(key, 0.0)) for log in logging_outputs))


def _by_layer(values: Dict, mean: bool) -> Dict[int, float]:
    grouped = defaultdict(list)
    for (layer, _), v in values.items():
        grouped[layer].append(v)
    return {l: (sum(v) / len(v) if mean else max(v)) for l, v in sorted(grouped.items())}


def has_sigma_entries(logging_outputs: Iterable[Mapping]) -> bool:
    return any(k.startswith("sigma/") for log in logging_outputs for k in log)


def reduce_sigma_values(logging_outputs: Sequence[Mapping]) -> "OrderedDict[str, float]":
    """The logged metric values (in logging order) from logging outputs that fairseq may have
    summed across workers and micro-batches; empty off-interval."""
    keys = set()
    for log in logging_outputs:
        keys.update(k for k in log if k.startswith("sigma/"))
    out: "OrderedDict[str, float]" = OrderedDict()
    if not keys:
        return out
    workers = max(_total(logging_outputs, "sigma/workers"), 1.0)
    tot = {k: _total(logging_outputs, k) for k in keys}
    per_layer = tot.get("sigma/per_layer", 0.0) > 0

    per_head = defaultdict(dict)  # (stat, kind) -> {(layer, head): value}
    for k, v in tot.items():
        parts = k.split("/")
        if parts[1] in ("ent", "entn", "entlb", "qk"):
            _, stat, kind, layer, head = parts
            if stat == "qk":  # σ of W_K W_Qᵀ: the same on every worker
                per_head[(stat, kind)][(int(layer), int(head))] = v / workers
            else:  # entropy sums over queries: divide by their count
                n = tot.get(f"sigma/n/{kind}/{layer}", 0.0)
                if n > 0:
                    per_head[(stat, kind)][(int(layer), int(head))] = v / n
    for kind in KINDS:
        ent = per_head.get(("ent", kind))
        if ent:
            out[f"ent_{kind}_mean"] = sum(ent.values()) / len(ent)
            out[f"ent_{kind}_min"] = min(ent.values())
            if per_layer:
                for layer, value in _by_layer(ent, mean=True).items():
                    out[f"ent_{kind}_L{layer}"] = value
        entn = per_head.get(("entn", kind))
        if entn:
            out[f"entn_{kind}_mean"] = sum(entn.values()) / len(entn)
            out[f"entn_{kind}_min"] = min(entn.values())
        lb = per_head.get(("entlb", kind))
        if lb:
            out[f"entlb_{kind}_mean"] = sum(lb.values()) / len(lb)
        qk = per_head.get(("qk", kind))
        if qk:
            out[f"sigmaqk_{kind}_max"] = max(qk.values())
            if per_layer:
                for layer, value in _by_layer(qk, mean=False).items():
                    out[f"sigmaqk_{kind}_L{layer}"] = value

    gamma_sum = gamma_n = 0.0
    largest = []  # per group: the largest γ (the same on every worker, so the sum / workers)
    for k, n in tot.items():
        if not k.startswith("sigma/count/") or n <= 0:
            continue
        group = k[len("sigma/count/"):]
        g, s = tot[f"sigma/gamma/{group}"], tot[f"sigma/sigma/{group}"]
        gamma_sum, gamma_n = gamma_sum + g, gamma_n + n
        largest.append(tot.get(f"sigma/gammamax/{group}", g / n * workers) / workers)
        side, layer = group.split("/")
        if per_layer:
            out[f"gamma_{side}_L{layer}" if side != "other" else "gamma_other"] = g / n
            out[f"sigma_{side}_L{layer}" if side != "other" else "sigma_other"] = s / n
    if gamma_n > 0:
        out["gamma_mean"] = gamma_sum / gamma_n
        out["gamma_max"] = max(largest)
    if "sigma/alarms" in tot:
        out["entropy_alarms"] = tot["sigma/alarms"]
    return out


def alarm_hits(head_entropies: Mapping[str, Sequence[float]], initial: Dict[tuple, float],
               alarm: float, alarm_fraction: float) -> List[AlarmHit]:
    """Heads whose mean entropy is below max(alarm, alarm_fraction · entropy at the first check).
    ``head_entropies``: attention name ("kind.layer") -> mean entropy per head; ``initial`` is
    the caller's memory of the first check, filled in here."""
    hits = []
    for name, entropies in head_entropies.items():
        for head, ent in enumerate(entropies):
            first = initial.setdefault((name, head), ent)
            limit = max(alarm, alarm_fraction * first)
            if ent < limit:
                hits.append((ent, name, head, first, limit))
    return hits


def alarm_message(update: int, hits: List[AlarmHit]) -> str:
    """The warning for the lowest head among the hits."""
    ent, name, head, initial, limit = min(hits)
    kind, layer = name.split(".")
    return (f"entropy collapse alarm at update {update}: {kind} layer {layer} head {head} has attention "
            f"entropy {ent:.4f} nats < {limit:.4f} (first check: {initial:.4f}); "
            f"{len(hits)} head(s) below the threshold")
