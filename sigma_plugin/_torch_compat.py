"""torch ≥ 2.6 loads checkpoints with weights_only=True. fairseq checkpoints keep their
cfg as plain containers but the legacy model arguments as an ``argparse.Namespace``, and the
audio fine-tuning task (wav2vec 2.0 CTC) keeps its target ``Dictionary`` in the checkpoint's task
state: allowlist exactly those classes (no global switch-off of the check)."""
import argparse

import torch


def allow_fairseq_checkpoints() -> None:
    add = getattr(torch.serialization, "add_safe_globals", None)
    if add is not None:
        from fairseq.data.dictionary import Dictionary
        add([argparse.Namespace, Dictionary])
