"""One-line reasons for a checkpoint that torch.load refuses or cannot read (instead of torch's
multi-line advice, which suggests allowlisting whatever the file asks to run)."""
from __future__ import annotations

import pickle
import re


def refused_by_weights_only(exc: BaseException) -> bool:
    return isinstance(exc, pickle.UnpicklingError) and "Weights only load failed" in str(exc)


def load_error_reason(exc: BaseException) -> str:
    """Why a checkpoint could not be loaded, as a phrase that follows the file's name."""
    msg = str(exc)
    if refused_by_weights_only(exc) and ("GLOBAL" in msg or "allowed global" in msg or "Unsupported class" in msg):
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", msg)
        what = f" (it asks for {found.group(1)})" if found else ""
        return (f"holds objects that would run code when unpickled{what}; it was not loaded "
                f"(checkpoints may hold only tensors, plain containers and argparse.Namespace)")
    if isinstance(exc, EOFError) or any(s in msg for s in ("central directory", "truncated", "Ran out of input",
                                                           "failed reading zip archive", "unexpected EOF")):
        return "is truncated or damaged (not a complete torch checkpoint)"
    if isinstance(exc, pickle.UnpicklingError) or "invalid load key" in msg:
        return "is not a torch checkpoint (unreadable pickle data)"
    first = msg.strip().splitlines()[0] if msg.strip() else ""
    return f"cannot be read as a torch checkpoint ({type(exc).__name__}{': ' + first if first else ''})"
