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
    p.add_argument("--verify", metavar="SUBSET", nargs="?", const="valid",
                   help="also load the checkpoint both as the stock model and as its twin and print the "
                        "largest |Δ log-prob| between them on a batch of SUBSET of DATA (default valid)")
    p.add_argument("--batch", type=int, default=8, help="sentences/utterances in the --verify batch (default 8)")
    return p


def verify_import(checkpoint: str, data: str, subset: str, batch: int) -> float:
    """Largest |Δ| between the stock model's and its imported twin's log-probabilities (eval mode)."""
    import logging

    import torch
    from fairseq import checkpoint_utils
    from sigma_plugin.models.stock_import import load_stock_as_twin
    for name in ("fairseq", "sigma_plugin"):  # the command prints its own summary
        logging.getLogger(name).setLevel(logging.WARNING)
    overrides = {"data": data}
    try:
        (stock,), _, task = checkpoint_utils.load_model_ensemble_and_task([checkpoint], arg_overrides=overrides)
        (twin,), _, _ = load_stock_as_twin(checkpoint, overrides)
        task.load_dataset(subset)
    except FileNotFoundError as e:
        raise StepError(f"--verify {subset}: {e}") from None
    dataset = task.dataset(subset)
    if batch < 1 or len(dataset) == 0:
        raise StepError(f"--verify {subset}: no examples (or --batch {batch} < 1)")
    sample = dataset.collater([dataset[i] for i in range(min(batch, len(dataset)))])
    outs = []
    for model in (stock, twin):
        model.eval()
        torch.manual_seed(0)
        with torch.no_grad():
            outs.append(model.get_normalized_probs(model(**sample["net_input"]), log_probs=True).float())
    finite = torch.isfinite(outs[0]) & torch.isfinite(outs[1])
    return float((outs[0][finite] - outs[1][finite]).abs().max())


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
    if args.verify:
        if args.data == "DATA":
            raise StepError("--verify needs DATA (the data folder the checkpoint was trained on)")
        delta = verify_import(args.checkpoint, args.data, args.verify, args.batch)
        print(f"# imported as its σReparam twin: max |Δ log-prob| = {delta:.3g} on {args.verify} "
              f"(γ₀ = σ₀: the stock function)")
    for note in notes:
        print(f"# {note}")
    print(" ".join(shlex.quote(c) for c in cmd) + " \\")
    print("    --optimizer ... --lr ... --max-update ...   # your training options; --sigma-* flags: docs/flags.md")


def main(argv: Optional[List[str]] = None) -> int:
    return run_cli("sigma-twin", twin, argv)


if __name__ == "__main__":
    sys.exit(main())
