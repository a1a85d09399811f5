"""Average the model weights of the last N fairseq checkpoints (the semantics of fairseq's
scripts/average_checkpoints.py, which the fairseq wheel does not ship).

σReparam checkpoints: the raw weights W and γ are averaged like any parameter, and each
power-iteration vector u is then refreshed on the averaged W (20 steps), so that
σ(W_avg) is estimated for the weights actually used.

    python -m sigma_plugin.recipe.average --dir exp/run --last 5 --output exp/run/checkpoint_avg.pt
    python -m sigma_plugin.recipe.average --checkpoints a.pt b.pt --output avg.pt
"""
import argparse
import re
import sys
from collections import OrderedDict
from pathlib import Path
from typing import List

import torch

from sigma_plugin.nn.power_iteration import power_iteration
from sigma_plugin.util import atomic_path, fail, run_cli

_UPDATE_CKPT = re.compile(r"checkpoint_(\d+)_(\d+)\.pt$")
_EPOCH_CKPT = re.compile(r"checkpoint(\d+)\.pt$")
_U_SUFFIX = "parametrizations.weight.0.u"
_W_SUFFIX = "parametrizations.weight.original"


def last_checkpoints(folder: Path, n: int) -> List[Path]:
    """The n most recent update checkpoints (checkpoint_E_U.pt), else epoch checkpoints."""
    if not folder.is_dir():
        fail(f"{folder}: checkpoint folder not found")
    by_update = sorted(((int(m.group(2)), p) for p in folder.iterdir() if (m := _UPDATE_CKPT.search(p.name))))
    by_epoch = sorted(((int(m.group(1)), p) for p in folder.iterdir() if (m := _EPOCH_CKPT.search(p.name))))
    found = by_update or by_epoch
    if not found:
        fail(f"{folder}: no checkpoint_E_U.pt or checkpointE.pt files to average "
             f"(train with --save-interval-updates/--keep-interval-updates, or keep epoch checkpoints)")
    return [p for _, p in found[-n:]]


def _load(path: Path):
    from sigma_plugin._torch_compat import allow_fairseq_checkpoints
    allow_fairseq_checkpoints()  # fairseq checkpoints under weights_only loading
    if not Path(path).is_file():
        fail(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu")
    except Exception as e:  # refused by weights_only, truncated, not a checkpoint
        from sigma_plugin.util.load_errors import load_error_reason
        fail(f"{path}: the checkpoint {load_error_reason(e)}")
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        fail(f"{path}: not a fairseq checkpoint (no 'model' state dict)")
    return state


@torch.no_grad()
def average(paths: List[Path]) -> dict:
    if not paths:
        fail("no checkpoints to average")
    first = _load(paths[0])
    sums = OrderedDict((k, v.clone().double() if v.is_floating_point() else v.clone())
                       for k, v in first["model"].items())
    for path in paths[1:]:
        model = _load(path)["model"]
        if set(model) != set(sums):
            fail(f"{path}: its parameters differ from {paths[0]}'s; cannot average different models")
        for k, v in model.items():
            if v.is_floating_point():
                sums[k] += v.double()
    averaged = OrderedDict()
    for k, v in sums.items():
        ref = first["model"][k]
        averaged[k] = (v / len(paths)).to(ref.dtype) if ref.is_floating_point() else v
    _refresh_power_iteration(averaged)
    first["model"] = averaged
    return first


def _refresh_power_iteration(state: dict, steps: int = 20) -> None:
    for k in [k for k in state if k.endswith(_U_SUFFIX)]:
        w = state.get(k[: -len(_U_SUFFIX)] + _W_SUFFIX)
        if w is None:
            continue
        _, u = power_iteration(w.double().flatten(1), state[k].double(), steps)
        state[k] = u.to(state[k].dtype)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--dir", type=Path, help="folder of a fairseq run (uses --last)")
    src.add_argument("--checkpoints", nargs="+", type=Path)
    ap.add_argument("--last", type=int, default=5, help="how many of the latest checkpoints (with --dir)")
    ap.add_argument("--output", required=True, type=Path)
    args = ap.parse_args(argv)
    if args.last < 1:
        fail(f"--last must be >= 1, got {args.last}")
    paths = last_checkpoints(args.dir, args.last) if args.dir else args.checkpoints
    state = average(paths)
    with atomic_path(args.output) as tmp:
        torch.save(state, tmp)
    print(f"average: {len(paths)} checkpoints ({', '.join(p.name for p in paths)}) -> {args.output}")


if __name__ == "__main__":
    sys.exit(run_cli(None, main))
