"""--sigma-entropy-alarm-stop's snapshot: the model at the alarm as a fairseq checkpoint (no
optimizer state) that sigma-inspect, sigma-export and fairseq-generate read, and the advice on
where to resume. No fairseq import."""
import argparse
import glob
import os
import re
from typing import Optional, Tuple

import torch
from torch import nn


def snapshot_path(alarm_dir: str, update: int) -> str:
    return os.path.join(alarm_dir, f"entropy_alarm_u{update}.pt")


def save_snapshot(model: nn.Module, alarm_dir: str, update: int, message: str) -> str:
    """``model``: the unwrapped model. Written atomically; returns its path."""
    os.makedirs(alarm_dir, exist_ok=True)
    path = snapshot_path(alarm_dir, update)
    args = getattr(model, "sigma_args", None) or getattr(model, "args", None)
    state = {
        "args": plain_namespace(args),
        "cfg": None,
        "model": model.state_dict(),
        "optimizer_history": [{"criterion_name": "entropy_alarm", "optimizer_name": "none",
                               "lr_scheduler_state": {"best": None}, "num_updates": update}],
        "extra_state": {"train_iterator": {"epoch": 0, "iterations_in_epoch": 0}, "entropy_alarm": message},
        "last_optimizer_state": None,
    }
    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


_UPDATE_NAME = re.compile(r"checkpoint_\d+_(\d+)\.pt")
_SNAPSHOT_NAME = re.compile(r"entropy_alarm_u(\d+)\.pt")


def checkpoint_update(path: str) -> Optional[int]:
    """The number of updates a fairseq checkpoint was saved at: from its name
    (``checkpoint_E_U.pt``), else from the file (``checkpoint_last.pt``, ``checkpoint_best.pt``,
    ``checkpointE.pt``); None when it cannot be read."""
    m = _UPDATE_NAME.fullmatch(os.path.basename(path))
    if m:
        return int(m.group(1))
    try:  # fairseq keeps the legacy model arguments as an argparse.Namespace
        with torch.serialization.safe_globals([argparse.Namespace]):
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        return int(state["optimizer_history"][-1]["num_updates"])
    except Exception:  # unreadable, refused or not a fairseq checkpoint: not a candidate
        return None


def alarm_update(alarm_dir: str) -> Optional[int]:
    """The update of the newest alarm snapshot in ``alarm_dir`` (None if there is none)."""
    found = [(os.path.getmtime(p), int(m.group(1))) for p in glob.glob(os.path.join(alarm_dir, "entropy_alarm_u*.pt"))
             for m in [_SNAPSHOT_NAME.fullmatch(os.path.basename(p))] if m]
    return max(found)[1] if found else None


def checkpoint_before(alarm_dir: str, update: int) -> Optional[Tuple[str, int]]:
    """(path, update) of the newest checkpoint in ``alarm_dir`` saved at or before ``update``."""
    best = None
    for path in glob.glob(os.path.join(alarm_dir, "checkpoint*.pt")):
        u = checkpoint_update(path)
        # at equal updates prefer the file that names its update (checkpoint_last.pt is overwritten)
        key = (u, _UPDATE_NAME.fullmatch(os.path.basename(path)) is not None)
        if u is not None and u <= update and (best is None or key > best[0]):
            best = (key, path)
    return (best[1], best[0][0]) if best else None


def resume_advice(alarm_dir: str, update: Optional[int] = None, collapse_began: Optional[int] = None) -> str:
    """Where to go on from after an alarm at ``update`` (default: the newest snapshot's update).

    The checkpoint named is the newest one saved before the collapse: at or before
    ``collapse_began`` (the last check before the alarmed entropy started to fall) when the
    caller knows it, else strictly before the alarm update. checkpoint_last.pt is named only if
    it was saved then: at the alarm it usually holds the collapsed model itself, and resuming it
    stops again at once."""
    if update is None:
        update = alarm_update(alarm_dir)
    stop = "or drop --sigma-entropy-alarm-stop."
    if update is None:  # no snapshot to date the alarm: the newest checkpoint, said as such
        found = sorted(glob.glob(os.path.join(alarm_dir, "checkpoint*.pt")), key=os.path.getmtime)
        if found:
            return f"resume from an earlier checkpoint than {found[-1]} (the newest there) with a lower --lr, {stop}"
        return f"no checkpoint has been saved in {alarm_dir} yet: restart with a lower --lr, {stop}"
    limit, why = (collapse_began, f"before the entropy started to fall (after update {collapse_began})") \
        if collapse_began is not None and collapse_began < update else (update - 1, f"before the alarm at update {update}")
    found = checkpoint_before(alarm_dir, limit)
    if found is None:
        return (f"no checkpoint has been saved in {alarm_dir} {why}: restart from scratch with a lower --lr (pass "
                f"--sigma-entropy-alarm-dir your --save-dir to be pointed at its checkpoints; keep more of them "
                f"with --keep-interval-updates), {stop}")
    path, at = found
    return (f"resume from {path} (update {at}, the newest checkpoint saved {why}) with a lower --lr: add "
            f"--restore-file {path} --lr LOWER to the same fairseq-train command (if the alarm fires again, go "
            f"further back), {stop}")


def plain_namespace(args):
    """The model arguments with plain values only (what torch's weights_only loading accepts)."""
    def plain(v):
        if v is None or isinstance(v, (str, int, float, bool)):
            return True
        if isinstance(v, (list, tuple)):
            return all(plain(x) for x in v)
        if isinstance(v, dict):
            return all(isinstance(k, str) and plain(x) for k, x in v.items())
        return False
    if args is None:
        return None
    return argparse.Namespace(**{k: v for k, v in vars(args).items() if plain(v)})
