"""--sigma-entropy-alarm-stop's snapshot: the model at the alarm as a fairseq checkpoint (no
optimizer state) that sigma-inspect, sigma-export and fairseq-generate read, and the advice on
where to resume. No fairseq import."""
import argparse
import glob
import os

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


def resume_advice(alarm_dir: str) -> str:
    found = sorted(glob.glob(os.path.join(alarm_dir, "checkpoint*.pt")), key=os.path.getmtime)
    last = os.path.join(alarm_dir, "checkpoint_last.pt")
    if os.path.isfile(last):
        return f"resume from {last} with a lower --lr, or drop --sigma-entropy-alarm-stop."
    if found:
        return f"resume from {found[-1]} (the newest checkpoint there) with a lower --lr, or drop " \
               f"--sigma-entropy-alarm-stop."
    return (f"no checkpoint has been saved in {alarm_dir} yet: restart with a lower --lr (pass "
            f"--sigma-entropy-alarm-dir your --save-dir to be pointed at its checkpoints), or drop "
            f"--sigma-entropy-alarm-stop.")


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
