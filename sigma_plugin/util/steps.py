"""The one error type of the command-line steps (``sigma-*`` tools, ``python -m
sigma_plugin.recipe.*`` / ``.corpus.*``) and the wrapper that reports it as one line."""
from __future__ import annotations

import logging
import sys
from typing import Callable, NoReturn, Optional, Sequence

EXIT_ERROR = 2


class StepError(Exception):
    """A problem with the user's input (arguments, files, settings) that the user can fix:
    reported by :func:`run_cli` as ``[<prog>: ]error: <message>`` on stderr, exit status 2, no
    traceback."""


def fail(message: str) -> NoReturn:
    raise StepError(message)


def run_cli(prog: Optional[str], main: Callable[[Optional[Sequence[str]]], Optional[int]],
            argv: Optional[Sequence[str]] = None) -> int:
    """``main(argv)``'s exit status (0 when it returns None); a :class:`StepError` is printed as
    ``<prog>: error: <message>`` (``error: <message>`` when ``prog`` is None) and gives status 2.
    Entry points: ``sys.exit(run_cli("sigma-plot", plot, argv))``, ``sys.exit(run_cli(None, main))``."""
    # Importing fairseq leaves the root logger at DEBUG (matplotlib's font search, fairseq's
    # INFO lines); the steps print their own results.
    logging.getLogger().setLevel(logging.WARNING)
    try:
        status = main(argv)
    except StepError as e:
        print(f"{prog}: error: {e}" if prog else f"error: {e}", file=sys.stderr)
        return EXIT_ERROR
    return 0 if status is None else status
