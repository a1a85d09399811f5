"""Stock fairseq checkpoints and their σReparam twins: load one into its twin in-process, and the
``sigma_<arch>`` command line that continues from it (``sigma-twin``).

The weights themselves are imported by the load-state-dict pre-hook of each σReparam weight
(``sigma_plugin.nn.parametrization``), so every fairseq load path works: ``--finetune-from-model``,
``--restore-file`` with ``--reset-optimizer``, ``--load-pretrained-encoder-from``, and
``load_stock_as_twin`` below for ``checkpoint_utils``."""
import argparse
from typing import Dict, List, Optional, Tuple

from omegaconf import DictConfig, OmegaConf, open_dict

from .sigma_flags import SigmaOptionError
from .twins import PREFIX, twin_arch_of


# Options of a stock training run that σReparam refuses (sigma_validation.refuse_unsafe_flags) and that
# change nothing for an imported model's function: switched off on import, left out of sigma-twin's command.
UNSAFE_TRAINING_OPTIONS = {"checkpoint_activations": False, "offload_activations": False,
                           "quant_noise_pq": 0.0, "quant_noise_scalar": 0.0}


def model_cfg_arch(model_cfg) -> str:
    """The arch a checkpoint's ``cfg.model`` (or legacy ``args``) was built with."""
    arch = getattr(model_cfg, "arch", None) or getattr(model_cfg, "_name", None)
    if not arch:
        raise SigmaOptionError("the checkpoint's model configuration names no arch (cfg.model.arch / _name)")
    return str(arch)


def _set(cfg, key: str, value) -> None:
    if isinstance(cfg, DictConfig):
        with open_dict(cfg):
            cfg[key] = value
    else:
        setattr(cfg, key, value)


def load_stock_as_twin(path: str, arg_overrides: Optional[dict] = None, **kwargs):
    """``checkpoint_utils.load_model_ensemble_and_task`` for a stock checkpoint, built as its
    ``sigma_<arch>`` twin: (models, cfg, task). ``arg_overrides`` as fairseq's (e.g. ``data``);
    --sigma-* flags may be given there too (``sigma_gamma_init`` other than sigma0 changes the
    function, see docs/flags.md)."""
    from fairseq import checkpoint_utils
    overrides = dict(arg_overrides or {})
    sigma = {k: overrides.pop(k) for k in list(overrides) if k.startswith("sigma_")}
    state = checkpoint_utils.load_checkpoint_to_cpu(path, overrides)
    model_cfg = state["cfg"]["model"] if state.get("cfg") is not None else state["args"]
    twin = twin_arch_of(model_cfg_arch(model_cfg))
    if getattr(model_cfg, "_name", None) is not None:
        _set(model_cfg, "_name", twin)
    if getattr(model_cfg, "arch", None) is not None:
        _set(model_cfg, "arch", twin)
    sigma.setdefault("sigma_layernorm", "stock")  # where the stock model has it: the same function
    for key, off in UNSAFE_TRAINING_OPTIONS.items():  # training-only options σReparam refuses
        if getattr(model_cfg, key, None):
            _set(model_cfg, key, off)
    for key, value in sigma.items():
        _set(model_cfg, key, value)
    return checkpoint_utils.load_model_ensemble_and_task([path], arg_overrides=overrides, state=state, **kwargs)


def _defaults_for(arch: str, model_cfg) -> Dict[str, object]:
    """What the stock arch gives when nothing is set on the command line."""
    from fairseq.models import ARCH_CONFIG_REGISTRY, ARCH_MODEL_REGISTRY
    dc = getattr(ARCH_MODEL_REGISTRY[arch], "__dataclass", None)
    if dc is not None:
        base = OmegaConf.structured(dc())
        with open_dict(base):
            ARCH_CONFIG_REGISTRY[arch](base)
        return _plain_values(base)
    ns = argparse.Namespace()
    ARCH_CONFIG_REGISTRY[arch](ns)
    return vars(ns)


def _interpolated(cfg, key) -> bool:
    return OmegaConf.is_interpolation(cfg, key)


def _dataclass_defaults(dc) -> Dict[str, object]:
    base = OmegaConf.structured(dc())
    return {k: base[k] for k in base if not OmegaConf.is_missing(base, k) and not _interpolated(base, k)}


def _plain_values(cfg) -> Dict[str, object]:
    if isinstance(cfg, argparse.Namespace):
        return vars(cfg)
    return {k: cfg[k] for k in cfg if not _interpolated(cfg, k) and not OmegaConf.is_missing(cfg, k)}


def _differences(values: Dict[str, object], defaults: Dict[str, object], notes: List[str]) -> List[str]:
    """Command-line flags for the values that differ from the defaults."""
    out = []
    for key in sorted(defaults):
        if key.startswith("_") or key in ("arch", "data") or key not in values:
            continue
        if key in UNSAFE_TRAINING_OPTIONS and values[key]:
            notes.append(f"{key}={values[key]} left out: σReparam refuses it (docs/flags.md)")
            continue
        value, default = values[key], defaults[key]
        if value == default or value is None:
            continue
        flag = _flag(key, value, default)
        if flag:
            out += flag
        else:
            notes.append(f"{key}={value} differs from the default {default} and has no off-switch")
    return out


def _flag(key: str, value, default) -> List[str]:
    name = "--" + key.replace("_", "-")
    if isinstance(value, bool):
        return [name] if value and not default else []  # fairseq's switches have no "off" form
    if isinstance(value, (list, tuple)):
        value = str(list(value))
    return [name, str(value)]


def twin_command(path: str, state: Optional[dict] = None) -> Tuple[str, List[str], List[str]]:
    """(twin arch, fairseq-train arguments, notes) that rebuild a stock checkpoint's model as its
    σReparam twin and continue from it: the model options that differ from the arch's defaults,
    the task, the criterion's twin and ``--finetune-from-model``."""
    if state is None:
        from fairseq import checkpoint_utils
        state = checkpoint_utils.load_checkpoint_to_cpu(path)
    cfg = state.get("cfg")
    model_cfg = cfg["model"] if cfg is not None else state["args"]
    arch = model_cfg_arch(model_cfg)
    if arch.startswith(PREFIX):
        raise SigmaOptionError(f"{path}: already a σReparam model (--arch {arch}); continue it with "
                               f"--restore-file or --finetune-from-model as it is")
    twin = twin_arch_of(arch)
    notes: List[str] = []
    args = ["--arch", twin] + _differences(_plain_values(model_cfg), _defaults_for(arch, model_cfg), notes)
    from fairseq.models import ARCH_MODEL_REGISTRY
    if ARCH_MODEL_REGISTRY[twin].sigma_config.__dataclass_fields__["sigma_layernorm"].default != "stock":
        args += ["--sigma-layernorm", "stock"]  # this family defaults to post-LN; keep the stock placement
    if cfg is not None and cfg.get("task") is not None and cfg["task"].get("_name"):
        from fairseq.tasks import TASK_DATACLASS_REGISTRY
        name = cfg["task"]["_name"]
        dc = TASK_DATACLASS_REGISTRY.get(name)
        args = ["--task", name] + args + (_differences(_plain_values(cfg["task"]), _dataclass_defaults(dc), notes)
                                          if dc is not None else [])
    elif getattr(model_cfg, "task", None):
        args = ["--task", str(model_cfg.task)] + args
    criterion = (cfg["criterion"].get("_name") if cfg is not None and cfg.get("criterion") is not None
                 else getattr(model_cfg, "criterion", None))
    if criterion:
        from fairseq.criterions import CRITERION_DATACLASS_REGISTRY, CRITERION_REGISTRY
        twin_criterion = criterion if str(criterion).endswith("_with_sigma") else f"{criterion}_with_sigma"
        if twin_criterion in CRITERION_REGISTRY:
            args += ["--criterion", twin_criterion]
        else:
            args += ["--criterion", str(criterion)]
            notes.append(f"criterion {criterion!r} has no _with_sigma twin: entropy is not logged")
        dc = CRITERION_DATACLASS_REGISTRY.get(criterion)
        if dc is not None and cfg is not None:
            args += _differences(_plain_values(cfg["criterion"]), _dataclass_defaults(dc), notes)
    args += ["--finetune-from-model", path]
    return twin, args, notes
