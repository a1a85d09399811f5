"""Walk a subset of a LibriSpeech-layout corpus.

Layout: ``ROOT/SUBSET/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac`` plus one
``<speaker>-<chapter>.trans.txt`` per chapter with lines ``<utt-id> <TRANSCRIPT>``.

Problems split in two kinds (docs/asr.md, "Bad input"):
* ``CorpusError`` -- the corpus or the arguments are wrong as a whole: missing or empty
  subset, a malformed transcript line, an utterance id that does not match its folder,
  a duplicate id. Skipping would hide the mistake, so these stop the prep.
* ``Skipped`` -- one utterance is unusable (transcript line without audio, audio without
  transcript line, empty transcript). It is counted, logged and listed in
  ``<subset>.skipped.tsv``; never silently dropped.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple


class CorpusError(ValueError):
    """The corpus (or the way it was named on the command line) is wrong as a whole."""


@dataclass(frozen=True)
class Utterance:
    utt_id: str
    audio: str      # path of the audio file
    text: str       # transcript, whitespace collapsed
    speaker: str


@dataclass(frozen=True)
class Skipped:
    utt_id: str
    path: str
    reason: str


def _chapter_dirs(subset_dir: Path) -> List[Tuple[str, str, Path]]:
    out = []
    for spk in sorted(os.listdir(subset_dir)):
        spk_dir = subset_dir / spk
        if not spk_dir.is_dir():
            continue  # SPEAKERS.txt, README, ...
        for chap in sorted(os.listdir(spk_dir)):
            if (spk_dir / chap).is_dir():
                out.append((spk, chap, spk_dir / chap))
    return out


def _read_transcripts(trans_file: Path, spk: str, chap: str) -> Dict[str, str]:
    texts: Dict[str, str] = {}
    prefix = f"{spk}-{chap}-"
    with open(trans_file, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.split(None, 1)
            utt_id = parts[0]
            if not utt_id.startswith(prefix) or len(utt_id) == len(prefix):
                raise CorpusError(f"{trans_file}:{lineno}: utterance id {utt_id!r} does not match "
                                  f"its folder (expected {prefix}<utt>)")
            if utt_id in texts:
                raise CorpusError(f"{trans_file}:{lineno}: duplicate utterance id {utt_id!r}")
            texts[utt_id] = " ".join(parts[1].split()) if len(parts) > 1 else ""
    return texts


def scan_subset(root, subset: str, audio_ext: str = ".flac") -> Tuple[List[Utterance], List[Skipped]]:
    """Utterances of ``root/subset`` sorted by id, and the ones that had to be skipped."""
    subset_dir = Path(root) / subset
    if not subset_dir.is_dir():
        raise CorpusError(f"subset folder not found: {subset_dir}")
    utts: List[Utterance] = []
    skipped: List[Skipped] = []
    seen = set()
    for spk, chap, chap_dir in _chapter_dirs(subset_dir):
        trans_file = chap_dir / f"{spk}-{chap}.trans.txt"
        texts = _read_transcripts(trans_file, spk, chap) if trans_file.is_file() else {}
        audio = {p[:-len(audio_ext)]: chap_dir / p for p in os.listdir(chap_dir) if p.endswith(audio_ext)}
        for utt_id in sorted(set(texts) | set(audio)):
            if utt_id in seen:
                raise CorpusError(f"{chap_dir}: utterance id {utt_id!r} appears in two chapters")
            seen.add(utt_id)
            if utt_id not in audio:
                skipped.append(Skipped(utt_id, str(chap_dir / (utt_id + audio_ext)), "transcript line without audio file"))
            elif utt_id not in texts:
                skipped.append(Skipped(utt_id, str(audio[utt_id]), f"audio without transcript line in {trans_file.name}"))
            elif not texts[utt_id]:
                skipped.append(Skipped(utt_id, str(audio[utt_id]), "empty transcript"))
            else:
                utts.append(Utterance(utt_id, str(audio[utt_id]), texts[utt_id], spk))
    if not utts:
        raise CorpusError(f"subset {subset_dir} has no usable utterances "
                          f"(expected <spk>/<chap>/<spk>-<chap>-<utt>{audio_ext} with a .trans.txt; "
                          f"{len(skipped)} skipped)")
    utts.sort(key=lambda u: u.utt_id)
    return utts, skipped
