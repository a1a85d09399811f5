"""torch ≥ 2.6 loads checkpoints with weights_only=True; fairseq checkpoints hold a few
non-tensor classes. Allowlist exactly those (no global switch-off of the check)."""
from __future__ import annotations

import argparse

import torch


def _checkpoint_classes():
    classes = [argparse.Namespace]
    try:
        from omegaconf import DictConfig, ListConfig
        from omegaconf.base import ContainerMetadata, Metadata
        from omegaconf.nodes import AnyNode
        classes += [DictConfig, ListConfig, ContainerMetadata, Metadata, AnyNode]
    except ImportError:  # omegaconf comes with fairseq; library-only use needs none of this
        pass
    return classes


def allow_fairseq_checkpoints() -> None:
    add = getattr(torch.serialization, "add_safe_globals", None)
    if add is not None:
        add(_checkpoint_classes())
