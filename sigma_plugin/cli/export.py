"""sigma-export: fold σReparam (W_hat = γ/σ·W) into plain weights and write a checkpoint of the
stock fairseq model (transformer / s2t_transformer) that stock fairseq-generate loads without
--user-dir. See docs/tools.md."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from typing import List, Optional

import torch

from sigma_plugin.util.atomic import atomic_path
from sigma_plugin.util.steps import StepError, run_cli

from .common import load_checkpoint, model_args


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sigma-export", description=__doc__.split("See")[0].strip())
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a fairseq checkpoint (.pt) trained with sigma_plugin")
    p.add_argument("out", metavar="OUT", help="the stock checkpoint to write (replaced atomically)")
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    return p


def export_checkpoint(path: str, out: str, force: bool = False) -> dict:
    if os.path.abspath(path) == os.path.abspath(out):
        raise StepError(f"OUT {out!r} is the input checkpoint; write the export to another file")
    if os.path.exists(out) and not force:
        raise StepError(f"OUT {out!r} exists; pass --force to replace it")
    refuse_weights_only_snapshot(path)
    state = load_checkpoint(path)
    args = model_args(state, path)
    from .stock_export import export_state

    try:
        stock, summary = export_state(state, args)
    except StepError as e:
        raise type(e)(f"{path}: cannot export: {e}") from None
    with atomic_path(out) as tmp:
        torch.save(stock, tmp)
        load_like_stock(tmp)
    return summary


def refuse_weights_only_snapshot(path: str) -> None:
    """Entropy-alarm snapshots of older versions held the weights only ({"model", "num_updates",
    "alarm"}): no model configuration to export with, and fairseq's loader fails on them with a bare
    KeyError 'best_loss'. Say what the file is instead. Today's snapshots are fairseq checkpoints."""
    if not os.path.basename(path).startswith("entropy_alarm_u") or not os.path.isfile(path):
        return
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # not readable this way: load_checkpoint reports it
        return
    if isinstance(state, dict) and "alarm" in state and "optimizer_history" not in state:
        raise StepError(f"{path}: an entropy-alarm snapshot of an older sigma_plugin version (the weights only, "
                        f"no model configuration), which cannot be exported; export a checkpoint fairseq saved "
                        f"(checkpoint_*.pt), or rerun with this version, whose snapshots export")


def load_like_stock(path: str) -> None:
    """torch.load as stock fairseq does it under torch >= 2.6 (weights_only=True, torch's default
    allowlist only): StepError if that would fail.

    The load runs in a fresh interpreter, which has none of the classes sigma_plugin allowlists on
    import. This process's allowlist is left alone: torch.serialization.safe_globals can only add
    classes for a scope, not hide the plugin's, and weights_only=False would check nothing."""
    code = "import sys, torch; torch.load(sys.argv[1], map_location='cpu', weights_only=True)"
    res = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True)
    if res.returncode != 0:
        lines = [line for line in res.stderr.strip().splitlines() if line.strip()]
        reason = next((line.strip() for line in lines if "Unsupported global" in line), lines[-1] if lines else "")
        raise StepError(f"the exported checkpoint would not load in stock fairseq ({reason})")


def export_main(argv: Optional[List[str]] = None) -> int:
    """sigma-export without the error handling: raises StepError."""
    args = build_parser().parse_args(argv)
    summary = export_checkpoint(args.checkpoint, args.out, args.force)
    print(f"wrote {args.out}: {summary['model']}, {summary['folded']} σReparam weights folded"
          + (f", dropped {', '.join(summary['dropped'])}" if summary["dropped"] else ""))
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """The sigma-export console script: exit status 0, or 2 with a message on stderr."""
    return run_cli("sigma-export", export_main, argv)


if __name__ == "__main__":
    sys.exit(main())
