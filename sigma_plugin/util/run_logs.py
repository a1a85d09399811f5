"""Training runs as plotted (``sigma-plot``) and compared (``recipe.compare``): train
(``train_inner``) and validation scalars per update, read from a fairseq ``--log-format json``
log or a ``--tensorboard-logdir`` directory (with tensorboard's ``EventAccumulator``)."""
from __future__ import annotations

import glob
import json
import os
import re
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Tuple

from .steps import StepError

Scalars = Dict[str, Dict[int, float]]

# fairseq's JSON progress bar: "... | train_inner | {...}" / "... | SUBSET | {...}" for each
# validation subset (--valid-subset valid, dev-tts, ...; keys "SUBSET_loss", "SUBSET_num_updates")
_LINE = re.compile(r"\|\s*([\w.-]+)\s*\|\s*(\{.*\})\s*$")
ENTROPY_HINT = ("train with --criterion label_smoothed_cross_entropy_with_sigma "
                "--sigma-log-interval N (and --log-format json or --tensorboard-logdir)")


@dataclass
class RunLog:
    source: str
    label: str
    train: Dict[str, Dict[int, float]] = field(default_factory=dict)
    valid: Dict[str, Dict[int, float]] = field(default_factory=dict)

    def series(self, key: str, split: str = "train") -> Tuple[List[int], List[float]]:
        points = sorted(getattr(self, split).get(key, {}).items())
        return [u for u, _ in points], [v for _, v in points]

    def has(self, key: str, split: str = "train") -> bool:
        return bool(getattr(self, split).get(key))

    def keys_matching(self, pattern: str, split: str = "train") -> List[str]:
        rx = re.compile(pattern)
        return sorted((k for k in getattr(self, split) if rx.fullmatch(k)), key=_natural)


def _natural(key: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", key)]


def read_run(path: str, label: Optional[str] = None) -> RunLog:
    if not os.path.exists(path):
        raise StepError(f"run {path!r}: no such file or directory")
    label = label or default_label(path)
    run = read_tensorboard_dir(path, label) if os.path.isdir(path) else read_json_log(path, label)
    if not run.train:
        what = ("no '| train_inner | {...}' lines; was it trained with --log-format json?"
                if os.path.isfile(path) else "no train_inner scalars")
        raise StepError(f"run {path!r}: {what}")
    return run


def default_label(path: str) -> str:
    path = os.path.normpath(path)
    base = os.path.basename(path)
    if base in ("tb", "tensorboard", "train_inner", "train.log", "log", "train") or base.startswith("events"):
        parent = os.path.basename(os.path.dirname(os.path.abspath(path)))
        return f"{parent}/{base}" if parent else base
    return os.path.splitext(base)[0] if os.path.isfile(path) else base


def read_json_log(path: str, label: str) -> RunLog:
    with open(path, encoding="utf-8", errors="replace") as f:
        return read_json_lines(f, path, label)


def read_json_lines(lines: Iterable[str], source: str, label: str) -> RunLog:
    """A run from the lines of a fairseq ``--log-format json`` output (a file, or captured output)."""
    run = RunLog(source, label)
    valid_subset = None  # the first validation subset is "valid"; later ones keep their prefix
    for line in lines:
        m = _LINE.search(line)
        if not m:
            continue
        try:
            stats = json.loads(m.group(2))
        except json.JSONDecodeError:
            continue  # a line cut short by a crash
        name = m.group(1)
        if name == "train_inner":
            _add(run.train, stats, "num_updates", prefix="")
        elif name != "train" and f"{name}_num_updates" in stats:
            valid_subset = valid_subset or name
            _add(run.valid, stats, f"{name}_num_updates", prefix=f"{name}_" if name == valid_subset else "")
    return run


def _add(target: Dict[str, Dict[int, float]], stats: dict, update_key: str, prefix: str) -> None:
    update = _number(stats.get(update_key))
    if update is None:
        return
    for key, raw in stats.items():
        value = _number(raw)
        if value is None or key == update_key:
            continue
        name = key[len(prefix):] if prefix and key.startswith(prefix) else key
        target.setdefault(name, {})[int(update)] = value  # a resumed run: the later line wins


def _number(raw) -> Optional[float]:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value  # nan/inf kept: a diverged run shows as a gap


def read_tensorboard_dir(path: str, label: str) -> RunLog:
    """``path`` is the --tensorboard-logdir (holding train_inner/ and valid/) or its train_inner/."""
    if os.path.isdir(os.path.join(path, "train_inner")):
        root = path
    elif os.path.basename(os.path.normpath(path)) == "train_inner":
        root = os.path.dirname(os.path.normpath(path))
    else:
        raise StepError(f"run {path!r}: a directory must be a fairseq --tensorboard-logdir "
                       "(with a train_inner/ subdirectory)")
    run = RunLog(path, label, train=read_scalars(os.path.join(root, "train_inner")))
    subsets = sorted(d for d in os.listdir(root) if d not in ("train_inner", "train")
                     and os.path.isdir(os.path.join(root, d)))
    if subsets:  # "valid", or the --valid-subset name (dev-tts, ...); the first one is plotted
        run.valid = read_scalars(os.path.join(root, "valid" if "valid" in subsets else subsets[0]))
    return run


def read_scalars(directory: str) -> Scalars:
    """The scalars of a TensorBoard event directory: {tag: {step: value}}."""
    if not glob.glob(os.path.join(directory, "events.out.tfevents.*")):
        raise StepError(f"{directory}: no TensorBoard event files (events.out.tfevents.*)")
    try:
        from tensorboard.backend.event_processing import event_accumulator
    except ImportError:  # a declared dependency, but an environment may lack it
        raise StepError(f"{directory}: reading TensorBoard event files needs the 'tensorboard' package "
                        "(pip install tensorboard); or use the fairseq log written with --log-format json "
                        "instead") from None
    acc = event_accumulator.EventAccumulator(directory, size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    return {tag: {int(e.step): float(e.value) for e in acc.Scalars(tag)}
            for tag in acc.Tags().get("scalars", [])}
