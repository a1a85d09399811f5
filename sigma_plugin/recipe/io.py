"""Atomic outputs and input checks shared by the recipe steps."""
from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import List, Sequence

from sigma_plugin.corpus.atomic import atomic_path  # noqa: F401  (re-exported for the recipe steps)


class RecipeError(Exception):
    """A problem with the user's input: printed as one clear line, exit code 2."""


def fail(message: str) -> None:
    raise RecipeError(message)


def run_cli(main) -> None:
    """Run ``main()`` turning RecipeError into a one-line message on stderr and exit 2."""
    try:
        main()
    except RecipeError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


@contextlib.contextmanager
def atomic_open(path: os.PathLike, mode: str = "w", encoding: str = "utf-8"):
    with atomic_path(path) as tmp:
        with open(tmp, mode, encoding=encoding) as f:
            yield f


def emit(text: str, output=None) -> None:
    """Print ``text``; also write it (atomically) to ``output`` when given."""
    if output:
        with atomic_open(output) as f:
            f.write(text)
    print(text, end="")


def count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def check_parallel(prefix: Path, langs: Sequence[str]) -> int:
    """Both sides of ``prefix.{lang}`` exist, are non-empty and have the same number of lines."""
    counts: List[int] = []
    for lang in langs:
        path = Path(f"{prefix}.{lang}")
        if not path.is_file():
            fail(f"{path}: file not found")
        n = count_lines(path)
        if n == 0:
            fail(f"{path}: empty corpus (0 lines)")
        counts.append(n)
    if len(set(counts)) != 1:
        detail = ", ".join(f"{prefix}.{l} has {n}" for l, n in zip(langs, counts))
        fail(f"line counts differ: {detail}; the two sides must be line-aligned")
    return counts[0]
