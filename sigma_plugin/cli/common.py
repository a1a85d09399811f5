"""Checkpoint loading shared by the command-line tools (their error type, ``run_cli`` and
atomic writes are the shared ones of :mod:`sigma_plugin.util`)."""
from __future__ import annotations

import os

from sigma_plugin.util.steps import StepError


def load_checkpoint(path: str) -> dict:
    """A fairseq checkpoint dict, loaded with torch's weights_only check on (importing
    sigma_plugin allowlists the argparse/omegaconf classes fairseq stores)."""
    if not os.path.isfile(path):
        raise StepError(f"checkpoint {path!r}: no such file")
    import sigma_plugin
    sigma_plugin.register()  # the models, and the cfg classes for weights_only loading
    from fairseq import checkpoint_utils

    try:
        state = checkpoint_utils.load_checkpoint_to_cpu(path)
    except Exception as e:  # corrupt/truncated file, not a torch pickle, refused classes
        from sigma_plugin.util.load_errors import load_error_reason
        raise StepError(f"checkpoint {path!r} {load_error_reason(e)}") from None
    if not isinstance(state, dict) or "model" not in state:
        raise StepError(f"checkpoint {path!r}: not a fairseq checkpoint (no 'model' state dict)")
    return state


def model_args(state: dict, path: str = "checkpoint"):
    """The model's configuration (argparse.Namespace or DictConfig) of a loaded checkpoint."""
    cfg = state.get("cfg")
    if cfg is not None and cfg.get("model") is not None:
        return cfg["model"]
    if state.get("args") is not None:
        return state["args"]
    raise StepError(f"{path}: the checkpoint holds no model configuration (neither cfg.model nor args)")


def arg(args, name: str, default=None):
    """Attribute of a Namespace or DictConfig, ``default`` when absent."""
    try:
        value = getattr(args, name)
    except Exception:  # omegaconf raises its own AttributeError/KeyError subclasses
        return default
    return default if value is None else value
