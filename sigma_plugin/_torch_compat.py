"""torch ≥ 2.6 loads checkpoints with weights_only=True. fairseq checkpoints keep their
cfg as plain containers but the legacy model arguments as an ``argparse.Namespace``:
allowlist exactly that class (no global switch-off of the check)."""
import argparse

import torch


def allow_fairseq_checkpoints() -> None:
    add = getattr(torch.serialization, "add_safe_globals", None)
    if add is not None:
        add([argparse.Namespace])
