"""TSV manifests as fairseq's speech_to_text task reads them (tab separated, no quoting)."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Dict, Iterable, List, Sequence

from sigma_plugin.util.atomic import atomic_path

MANIFEST_COLUMNS = ("id", "audio", "n_frames", "tgt_text", "speaker")
SKIPPED_COLUMNS = ("id", "path", "reason")


def _clean(value) -> str:
    text = str(value)
    if "\t" in text or "\n" in text:
        raise ValueError(f"TSV field contains a tab or newline: {text!r}")
    return text


def write_tsv(path, columns: Sequence[str], rows: Iterable[Dict]) -> int:
    """Write atomically; returns the number of rows."""
    n = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write("\t".join(columns) + "\n")
        for row in rows:
            f.write("\t".join(_clean(row[c]) for c in columns) + "\n")
            n += 1
    return n


def read_tsv(path, required: Sequence[str] = ()) -> List[Dict[str, str]]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found: {path}")
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quotechar=None, doublequote=False,
                                lineterminator="\n", quoting=csv.QUOTE_NONE)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing}; has {reader.fieldnames}")
        return [dict(r) for r in reader]
