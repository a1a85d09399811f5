"""Input checks and outputs shared by the recipe steps (their error type, ``fail``, ``run_cli``
and atomic writes are the shared ones of :mod:`sigma_plugin.util`)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Sequence

from sigma_plugin.util import StepError, atomic_open, fail


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
    """The whole file decodes as UTF-8; else a StepError naming the first bad line and the count."""
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
        except StepError as e:
            fail(f"{e}; {bad} line(s) of {path} are not UTF-8")
