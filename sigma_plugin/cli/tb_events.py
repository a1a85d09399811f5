"""Scalars of a TensorBoard event directory: {tag: {step: value}}.

Uses tensorboard's EventAccumulator when tensorboard is installed, otherwise reads the
TFRecord files directly with tensorboardX's protobuf classes (tensorboardX is what fairseq
writes with when tensorboard is absent).
"""
from __future__ import annotations

import glob
import os
import struct
from typing import Dict

from .common import CliError

Scalars = Dict[str, Dict[int, float]]


def read_scalars(directory: str) -> Scalars:
    files = sorted(glob.glob(os.path.join(directory, "events.out.tfevents.*")))
    if not files:
        raise CliError(f"{directory}: no TensorBoard event files (events.out.tfevents.*)")
    try:
        from tensorboard.backend.event_processing import event_accumulator
    except ImportError:
        event_accumulator = None
    if event_accumulator is not None:
        return _read_with_tensorboard(event_accumulator, directory)
    try:
        from tensorboardX.proto import event_pb2
    except ImportError:
        raise CliError(f"{directory}: reading TensorBoard event files needs the 'tensorboard' or "
                       "'tensorboardX' package (pip install tensorboardX); or plot the fairseq log "
                       "written with --log-format json instead") from None
    scalars: Scalars = {}
    for path in files:
        for record in _records(path):
            event = event_pb2.Event.FromString(record)
            for value in event.summary.value:
                number = _scalar(value)
                if number is not None:
                    scalars.setdefault(value.tag, {})[int(event.step)] = number
    return scalars


def _read_with_tensorboard(event_accumulator, directory: str) -> Scalars:
    acc = event_accumulator.EventAccumulator(directory, size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    return {tag: {int(e.step): float(e.value) for e in acc.Scalars(tag)}
            for tag in acc.Tags().get("scalars", [])}


def _records(path: str):
    """TFRecord framing: u64 length, u32 crc, data, u32 crc. A truncated tail (a run still
    writing) ends the file."""
    with open(path, "rb") as f:
        while True:
            header = f.read(12)
            if len(header) < 12:
                return
            (length,) = struct.unpack("<Q", header[:8])
            data = f.read(length)
            if len(data) < length or len(f.read(4)) < 4:
                return
            yield data


def _scalar(value):
    if value.HasField("simple_value"):
        return float(value.simple_value)
    if value.HasField("tensor") and value.tensor.float_val:
        return float(value.tensor.float_val[0])
    if value.HasField("tensor") and value.tensor.double_val:
        return float(value.tensor.double_val[0])
    return None
