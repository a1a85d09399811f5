"""Atomic file writes: write to a temporary file next to the target, then os.replace, so a reader
(or a rerun that resumes) never sees a half-written file."""
from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Iterator


def temp_path_for(path: Path) -> Path:
    """A temporary name in the same directory (so os.replace stays on one filesystem)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


@contextlib.contextmanager
def atomic_path(path) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` (a ``pathlib.Path``, not created) to write; it
    replaces ``path`` only if the block succeeds, and is removed otherwise."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def remove_stale_temps(directory, recursive: bool = False) -> int:
    """Delete temporary files/directories an interrupted run left behind; returns how many."""
    directory = Path(directory)
    if not directory.is_dir():
        return 0
    stale = list(directory.rglob(".*.tmp-*") if recursive else directory.glob(".*.tmp-*"))
    for p in stale:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        elif p.exists() or p.is_symlink():
            p.unlink()
    return len(stale)


@contextlib.contextmanager
def atomic_open(path, mode: str = "w", encoding: str = "utf-8"):
    """``open(path, mode)`` that replaces ``path`` only when the block succeeds."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, encoding=encoding) as f:
            yield f


def write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_lines(path, lines) -> None:
    write_text(path, "".join(f"{line}\n" for line in lines))
