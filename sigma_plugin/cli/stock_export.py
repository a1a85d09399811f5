"""Turn a sigma_plugin checkpoint into one stock fairseq loads and runs without --user-dir.

* σReparam is folded into plain weights (``sigma_state.fold_state_dict``);
* the model becomes the stock model it is the twin of: ``sigma_<arch>`` -> ``<arch>`` for every
  fairseq arch (``sigma_transformer*`` -> ``transformer*``, ``sigma_transformer_lm`` ->
  ``transformer_lm``, ...; a ``sigma_s2t_transformer`` checkpoint of the earlier layout has its
  encoder ``layers`` renamed back to ``transformer_layers``); the LayerNorm switches are kept as
  the build resolved them from --sigma-layernorm; the criterion ``<name>_with_sigma`` -> ``<name>``;
* the configuration is stored as plain dicts/lists/numbers/strings: stock fairseq under
  torch >= 2.6 loads checkpoints with weights_only=True, which refuses argparse.Namespace and
  omegaconf objects (fairseq turns the plain dicts back into its config on load);
* optimizer state, EMA weights and logged meters are dropped (they refer to γ parameters
  and plugin metrics that no longer exist).
What has no stock equivalent is refused with an ExportRefused naming the reason.
"""
from __future__ import annotations

import argparse
import enum
from collections import OrderedDict
from typing import Dict, Optional, Tuple

import torch

from sigma_plugin.util.steps import StepError

from .common import arg
from .sigma_state import fold_state_dict, reparam_weights, unknown_parametrizations

CRITERION_TWIN_SUFFIX = "_with_sigma"  # <name>_with_sigma has the stock <name>'s training loss
_KEPT_EXTRA_STATE = ("epoch", "train_iterator", "val_loss", "best", "previous_training_time")


class ExportRefused(StepError):
    """The checkpoint uses something stock fairseq cannot express."""


def plugin_model_name(args) -> Optional[str]:
    """The registered sigma_* model of the checkpoint's arch, or None if not a plugin model."""
    from fairseq.models import ARCH_MODEL_REGISTRY, MODEL_REGISTRY

    name = arg(args, "arch") or arg(args, "_name")
    cls = ARCH_MODEL_REGISTRY.get(name) or MODEL_REGISTRY.get(name)
    if cls is None:
        return None
    for model_name, model_cls in MODEL_REGISTRY.items():
        if model_cls is cls:
            return model_name
    return None


def stock_model_of(plugin_model: Optional[str]) -> Optional[str]:
    """The stock fairseq model a registered sigma_* model is the twin of (None: no stock twin,
    e.g. sigma_s2t_ctc)."""
    from fairseq.models import MODEL_REGISTRY
    cls = MODEL_REGISTRY.get(plugin_model) if plugin_model else None
    stock = getattr(cls, "sigma_stock_model", "") or None
    return stock if stock in MODEL_REGISTRY else None


def stock_criterion_of(name: Optional[str]) -> Optional[str]:
    from fairseq.criterions import CRITERION_REGISTRY
    if name and name.endswith(CRITERION_TWIN_SUFFIX):
        stock = name[:-len(CRITERION_TWIN_SUFFIX)]
        if stock in CRITERION_REGISTRY and CRITERION_REGISTRY[stock].__module__.startswith("fairseq."):
            return stock
    return None


def _is_stock_model(name: Optional[str]) -> bool:
    from fairseq.models import MODEL_REGISTRY

    return name in MODEL_REGISTRY and MODEL_REGISTRY[name].__module__.startswith("fairseq.")


def check_exportable(state: dict, args) -> Tuple[str, str]:
    """(plugin model, stock model), or ExportRefused naming what has no stock equivalent."""
    arch = arg(args, "arch") or arg(args, "_name")
    model = plugin_model_name(args)
    if _is_stock_model(model) and not any(True for _ in reparam_weights(state["model"])):
        raise ExportRefused(f"it is already a stock fairseq checkpoint (model {model!r}, --arch {arch}, no "
                            f"σReparam weights): stock fairseq-generate loads it as it is; nothing was written")
    stock = stock_model_of(model)
    if stock is None:
        raise ExportRefused(f"model {model or arch!r} (--arch {arch}) has no stock fairseq equivalent; "
                            f"exportable: every sigma_<arch> twin of a fairseq arch")
    if str(arg(args, "sigma_layernorm", "post")) == "none":
        raise ExportRefused("--sigma-layernorm none: stock fairseq Transformers always have LayerNorm "
                            "(removing it changes the function)")
    if arg(args, "sigma_deepnorm", False):
        raise ExportRefused("--sigma-deepnorm: DeepNorm's residual scaling x·α + f(x) has no stock "
                            "fairseq option")
    bad = unknown_parametrizations(state["model"])
    if bad:
        raise ExportRefused(f"parametrizations other than σReparam on 'weight' ({bad[0]}, ...) cannot be folded")
    _check_stock_task(state)
    return model, stock


def _check_stock_task(state: dict) -> None:
    from fairseq.tasks import TASK_REGISTRY

    task = ((state.get("cfg") or {}).get("task") or {})
    name = task.get("_name") if hasattr(task, "get") else None
    cls = TASK_REGISTRY.get(name) if name else None
    if cls is not None and not cls.__module__.startswith("fairseq."):
        raise ExportRefused(f"task {name!r} is not a stock fairseq task ({cls.__module__})")


def stock_arch(plugin_arch: str, plugin_model: str, stock_model: str) -> str:
    """sigma_transformer_wmt_en_de -> transformer_wmt_en_de when stock has it, else the base arch."""
    from fairseq.models import ARCH_MODEL_REGISTRY

    candidate = plugin_arch[len("sigma_"):] if plugin_arch.startswith("sigma_") else ""
    cls = ARCH_MODEL_REGISTRY.get(candidate)
    return candidate if cls is not None and cls.__module__.startswith("fairseq.") else stock_model


def stock_model_args(args, plugin_model: str, stock_model: str, state_dict) -> dict:
    """The model config as a plain dict for the stock model (every value already resolved by
    the plugin's build, so the stock arch's defaults change nothing)."""
    flat = dict(vars(args)) if isinstance(args, argparse.Namespace) else dict(to_plain(args, "cfg.model"))
    layernorm = str(flat.get("sigma_layernorm", "post"))
    out = {k: v for k, v in flat.items() if not k.startswith("sigma_") and not k.startswith("_sigma")}
    arch = stock_arch(str(flat.get("arch") or flat.get("_name")), plugin_model, stock_model)
    out.update(_name=arch, arch=arch, user_dir=None)
    if layernorm in ("post", "pre", "none"):  # as the build set them (a dataclass model keeps its own below)
        out.update(encoder_normalize_before=layernorm == "pre", decoder_normalize_before=layernorm == "pre")
    if stock_criterion_of(out.get("criterion")):
        out["criterion"] = stock_criterion_of(out["criterion"])
    dc = _stock_dataclass(stock_model)
    if dc is not None:  # a dataclass model loads only its own fields
        out = {k: v for k, v in out.items() if k in dc.__dataclass_fields__ or k == "_name"}
    if stock_model == "s2t_transformer":
        # stock builds encoder.ctc_proj iff --ctc-weight > 0
        has_ctc = any(k.startswith("encoder.ctc_proj.") for k in state_dict)
        weight = float(flat.get("ctc_weight") or 0.0) or float(flat.get("sigma_ctc_weight") or 0.0)
        out["ctc_weight"] = (weight or 1.0) if has_ctc else 0.0
    return to_plain(out, "cfg.model")


def _stock_dataclass(stock_model: str):
    from fairseq.models import MODEL_REGISTRY
    return getattr(MODEL_REGISTRY[stock_model], "__dataclass", None)


def stock_state_dict(state_dict, stock_model: str) -> "OrderedDict[str, torch.Tensor]":
    folded = fold_state_dict(state_dict)
    if stock_model == "s2t_transformer":  # checkpoints written before sigma_s2t_* kept stock key names
        folded = {("encoder.transformer_layers." + k[len("encoder.layers."):] if k.startswith("encoder.layers.") else k): v
                  for k, v in folded.items()}
    return OrderedDict((k, v.detach().clone().contiguous()) for k, v in folded.items())


def stock_cfg(state: dict, model_cfg: dict) -> dict:
    from fairseq.criterions import CRITERION_REGISTRY
    from fairseq.optim import OPTIMIZER_REGISTRY

    cfg = {k: to_plain(v, f"cfg.{k}") for k, v in (state.get("cfg") or {}).items() if k != "model"}
    cfg["model"] = model_cfg
    if isinstance(cfg.get("common"), dict):
        cfg["common"]["user_dir"] = None
    crit = cfg.get("criterion")
    if isinstance(crit, dict) and stock_criterion_of(crit.get("_name")):
        crit["_name"] = stock_criterion_of(crit["_name"])
        for k in [k for k in crit if k.startswith("sigma_")]:
            del crit[k]
    for section, registry in (("criterion", CRITERION_REGISTRY), ("optimizer", OPTIMIZER_REGISTRY)):
        value = cfg.get(section)
        name = value.get("_name") if isinstance(value, dict) else None
        if name and (name not in registry or not registry[name].__module__.startswith("fairseq.")):
            cfg[section] = None  # a plugin criterion/optimizer: not needed to load or generate
    return cfg


def to_plain(obj, where: str):
    """Namespace / omegaconf / OrderedDict / enum -> dicts, lists, str, numbers, None, tensors:
    what torch.load(weights_only=True) accepts without any allowlist."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(obj, (DictConfig, ListConfig)):
        obj = OmegaConf.to_container(obj, resolve=True, enum_to_str=True)
    if isinstance(obj, argparse.Namespace):
        obj = vars(obj)
    if isinstance(obj, dict):
        return {str(k): to_plain(v, f"{where}.{k}") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, enum.Enum):
        return str(obj.name)
    if obj is None or isinstance(obj, (bool, int, float, str, torch.Tensor)):
        return obj
    raise StepError(f"{where}: a {type(obj).__name__} value has no plain form that stock fairseq can load")


def export_state(state: dict, args) -> Tuple[dict, Dict[str, object]]:
    """(the stock checkpoint dict, a summary of what was done)."""
    plugin_model, stock_model = check_exportable(state, args)
    model_cfg = stock_model_args(args, plugin_model, stock_model, state["model"])
    history = [{k: to_plain(v, f"optimizer_history[{i}].{k}") for k, v in h.items() if k != "optimizer"}
               for i, h in enumerate(state.get("optimizer_history") or [])]
    if not history:
        history = [{"criterion_name": "", "optimizer_name": "", "lr_scheduler_state": {}, "num_updates": 0}]
    extra = state.get("extra_state") or {}
    out = {
        "args": None,
        "cfg": stock_cfg(state, model_cfg),
        "model": stock_state_dict(state["model"], stock_model),
        "criterion": to_plain(dict(state.get("criterion") or {}), "criterion"),
        "optimizer_history": history,
        "task_state": to_plain(state.get("task_state") or {}, "task_state"),
        "extra_state": {k: to_plain(extra[k], f"extra_state.{k}") for k in _KEPT_EXTRA_STATE if k in extra},
    }
    out["extra_state"].setdefault("train_iterator", {"epoch": 1, "iterations_in_epoch": 0, "shuffle": True})
    summary = {"model": f"{arg(args, 'arch') or arg(args, '_name')} -> {model_cfg.get('arch') or model_cfg['_name']}",
               "folded": len(list(reparam_weights(state["model"]))),
               "dropped": [k for k in ("last_optimizer_state",) if state.get(k) is not None]
               + [f"extra_state.{k}" for k in extra if k not in _KEPT_EXTRA_STATE]}
    return out, summary
