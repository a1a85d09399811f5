"""Atomic outputs and input checks shared by the recipe steps."""
from __future__ import annotations

import contextlib
import os
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


def decode_line(raw: bytes, path, lineno: int) -> str:
    """One line of a corpus file as text; text that is not UTF-8 stops with file:line (it would
    otherwise become U+FFFD characters, counted nowhere)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        fail(f"{path}:{lineno}: not valid UTF-8 (byte 0x{raw[e.start]:02x} at byte {e.start + 1} of the line); "
             f"convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8)")


def check_utf8(path: Path) -> None:
    """The whole file decodes as UTF-8; else a RecipeError naming the first bad line and the count."""
    first, bad = None, 0
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                bad += 1
                first = first or (raw, lineno)
    if bad:
        try:
            decode_line(first[0], path, first[1])
        except RecipeError as e:
            fail(f"{e}; {bad} line(s) of {path} are not UTF-8")
