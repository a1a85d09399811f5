"""What the three command-line tools share: errors with an exit code, atomic writes,
checkpoint loading."""
from __future__ import annotations

import logging
import os
import sys
import tempfile
from contextlib import contextmanager
from typing import Callable, Iterator, List, Optional

EXIT_ERROR = 2


class CliError(Exception):
    """A user-facing error: printed as ``<tool>: error: <message>``, exit status 2."""


def run_cli(tool: str, main: Callable[[Optional[List[str]]], int], argv=None) -> int:
    # Importing fairseq leaves the root logger at DEBUG (matplotlib's font search, fairseq's
    # INFO lines); these tools print their own results.
    logging.getLogger().setLevel(logging.WARNING)
    try:
        return main(argv)
    except CliError as e:
        print(f"{tool}: error: {e}", file=sys.stderr)
        return EXIT_ERROR


@contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yields a temporary path next to ``path``; renamed onto ``path`` only if the block
    succeeds, removed otherwise (a reader never sees a half-written file)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it 0600; give it a normal file's mode
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_checkpoint(path: str) -> dict:
    """A fairseq checkpoint dict, loaded with torch's weights_only check on (importing
    sigma_plugin allowlists the argparse/omegaconf classes fairseq stores)."""
    if not os.path.isfile(path):
        raise CliError(f"checkpoint {path!r}: no such file")
    import sigma_plugin
    sigma_plugin.register()  # the models, and the cfg classes for weights_only loading
    from fairseq import checkpoint_utils

    try:
        state = checkpoint_utils.load_checkpoint_to_cpu(path)
    except Exception as e:  # corrupt/truncated file, not a torch pickle, refused classes
        from .load_errors import load_error_reason
        raise CliError(f"checkpoint {path!r} {load_error_reason(e)}") from None
    if not isinstance(state, dict) or "model" not in state:
        raise CliError(f"checkpoint {path!r}: not a fairseq checkpoint (no 'model' state dict)")
    return state


def model_args(state: dict, path: str = "checkpoint"):
    """The model's configuration (argparse.Namespace or DictConfig) of a loaded checkpoint."""
    cfg = state.get("cfg")
    if cfg is not None and cfg.get("model") is not None:
        return cfg["model"]
    if state.get("args") is not None:
        return state["args"]
    raise CliError(f"{path}: the checkpoint holds no model configuration (neither cfg.model nor args)")


def arg(args, name: str, default=None):
    """Attribute of a Namespace or DictConfig, ``default`` when absent."""
    try:
        value = getattr(args, name)
    except Exception:  # omegaconf raises its own AttributeError/KeyError subclasses
        return default
    return default if value is None else value
