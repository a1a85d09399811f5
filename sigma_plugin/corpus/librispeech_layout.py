"""Writing a corpus in LibriSpeech's on-disk layout.

    ROOT/SUBSET/<speaker>/<chapter>/<speaker>-<chapter>-<utt:04d>.flac
    ROOT/SUBSET/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt   ("ID TRANSCRIPT" lines)
    ROOT/SUBSET/SPEAKERS.txt                                        (speaker id → voice)
"""
from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Dict, Iterable, List, Tuple

import numpy as np
import soundfile as sf

from sigma_plugin.util import atomic

SAMPLE_RATE = 16000


def utterance_id(speaker: int, chapter: int, index: int) -> str:
    return f"{speaker}-{chapter}-{index:04d}"


def flac_path(subset_dir: Path, utt_id: str) -> Path:
    speaker, chapter, _ = utt_id.split("-")
    return Path(subset_dir) / speaker / chapter / f"{utt_id}.flac"


def write_flac(path: Path, audio: np.ndarray, rate: int = SAMPLE_RATE) -> None:
    """16-bit FLAC, written to a temporary name and renamed (never a half-written .flac)."""
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    if peak > 0.99:
        audio = audio * (0.99 / peak)
    with atomic.atomic_path(path) as tmp:
        sf.write(str(tmp), audio, rate, format="FLAC", subtype="PCM_16")


def write_transcripts(subset_dir: Path, items: Iterable[Tuple[str, str]]) -> List[Path]:
    """One `<speaker>-<chapter>.trans.txt` per chapter from (utt_id, transcript) items."""
    chapters: Dict[Tuple[str, str], List[Tuple[str, str]]] = defaultdict(list)
    for utt_id, text in items:
        speaker, chapter, _ = utt_id.split("-")
        chapters[(speaker, chapter)].append((utt_id, text))
    written = []
    for (speaker, chapter), rows in sorted(chapters.items()):
        path = Path(subset_dir) / speaker / chapter / f"{speaker}-{chapter}.trans.txt"
        atomic.write_lines(path, (f"{u} {t}" for u, t in sorted(rows)))
        written.append(path)
    return written


def write_speakers(subset_dir: Path, subset: str, speakers: Iterable[Tuple[int, str, float, str]]) -> Path:
    """SPEAKERS.txt in LibriSpeech's column style: ID | SEX | SUBSET | MINUTES | NAME (the voice)."""
    lines = [";ID    |SEX| SUBSET          |MINUTES| NAME"]
    for speaker, sex, minutes, name in sorted(speakers):
        lines.append(f"{speaker:<6}| {sex} | {subset:<16}| {minutes:6.2f}| {name}")
    path = Path(subset_dir) / "SPEAKERS.txt"
    atomic.write_lines(path, lines)
    return path


def flac_seconds(path: Path) -> float:
    info = sf.info(str(path))
    return info.frames / info.samplerate


def is_complete_flac(path: Path) -> bool:
    return path.is_file() and os.path.getsize(path) > 0
