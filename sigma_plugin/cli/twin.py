"""sigma-twin: the fairseq-train command that continues a stock fairseq checkpoint as its σReparam
twin (``--arch sigma_<arch>``, the checkpoint's model options, the criterion's ``_with_sigma``
twin, ``--finetune-from-model``). See docs/flags.md ("Every fairseq model")."""
from __future__ import annotations

import argparse
import shlex
import sys
from typing import List, Optional

from sigma_plugin.util import StepError, run_cli

from .common import load_checkpoint


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sigma-twin", description=__doc__.split("See")[0].strip())
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a stock fairseq checkpoint (.pt)")
    p.add_argument("data", metavar="DATA", nargs="?", default="DATA",
                   help="the data folder to put in the command (default: the placeholder DATA)")
    return p


def command_line(checkpoint: str, data: str = "DATA") -> List[str]:
    """The fairseq-train argument list, and the notes printed beside it (as # lines)."""
    import os

    import sigma_plugin
    from sigma_plugin.models.sigma_flags import SigmaOptionError
    from sigma_plugin.models.stock_import import twin_command
    state = load_checkpoint(checkpoint)
    try:
        _, args, notes = twin_command(checkpoint, state)
    except SigmaOptionError as e:
        raise StepError(str(e)) from None
    user_dir = os.path.dirname(os.path.abspath(sigma_plugin.__file__))
    return ["fairseq-train", data, "--user-dir", user_dir] + args, notes


def twin(argv: Optional[List[str]] = None) -> None:
    args = build_parser().parse_args(argv)
    cmd, notes = command_line(args.checkpoint, args.data)
    for note in notes:
        print(f"# {note}")
    print(" ".join(shlex.quote(c) for c in cmd) + " \\")
    print("    --optimizer ... --lr ... --max-update ...   # your training options; --sigma-* flags: docs/flags.md")


def main(argv: Optional[List[str]] = None) -> int:
    return run_cli("sigma-twin", twin, argv)


if __name__ == "__main__":
    sys.exit(main())
