"""One worker's entropy/σ/γ measurements as summable ``sigma/...`` logging entries (sums and
counts, which fairseq may add across workers and micro-batches; sigma_reduction divides them).
No fairseq import."""
from typing import Dict, Mapping

from torch import nn

from sigma_plugin.models.introspection import layer_position
from sigma_plugin.nn import AttentionRecord, sigma_reparam_modules

_SIDE = {"encoder": "enc", "decoder": "dec"}


def logging_entries(model: nn.Module, records: Mapping[str, AttentionRecord], per_layer: bool) -> Dict[str, float]:
    """``model``: the unwrapped model; ``records``: the probe's records by "kind.layer"."""
    out: Dict[str, float] = {"sigma/workers": 1.0, "sigma/per_layer": float(per_layer)}
    for name, rec in records.items():
        kind, layer = name.split(".")
        out[f"sigma/n/{kind}/{layer}"] = rec.count
        for h in range(rec.heads):
            out[f"sigma/ent/{kind}/{layer}/{h}"] = float(rec.entropy_sum[h])
            out[f"sigma/entn/{kind}/{layer}/{h}"] = float(rec.norm_entropy_sum[h])
            out[f"sigma/entlb/{kind}/{layer}/{h}"] = float(rec.bound_sum[h])
            out[f"sigma/qk/{kind}/{layer}/{h}"] = float(rec.sigma_qk[h])
    for qname, _, p in sigma_reparam_modules(model):
        position = layer_position(qname)
        group = f"{_SIDE[position[0]]}/{position[1]}" if position else "other/0"
        gamma = float(p.gamma.detach())
        out[f"sigma/gamma/{group}"] = out.get(f"sigma/gamma/{group}", 0.0) + gamma
        out[f"sigma/gammamax/{group}"] = max(out.get(f"sigma/gammamax/{group}", gamma), gamma)
        out[f"sigma/sigma/{group}"] = out.get(f"sigma/sigma/{group}", 0.0) + float(p.last_sigma)
        out[f"sigma/count/{group}"] = out.get(f"sigma/count/{group}", 0.0) + 1.0
    return out
