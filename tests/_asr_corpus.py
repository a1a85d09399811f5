"""Tiny LibriSpeech-layout corpora of sine tones (and their prepared fairseq data) for ASR tests."""
from pathlib import Path
from typing import Dict, Optional

import numpy as np
import soundfile as sf

RATE = 16000
WORDS = ["ALPHA", "BRAVO", "CHARLIE", "DELTA", "ECHO", "FOXTROT", "GOLF", "HOTEL"]


def tone(seconds: float, freq: float = 440.0, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_chapter(subset_dir: Path, spk: str, chap: str, utts: Dict[str, Optional[str]],
                  audio: Optional[Dict[str, np.ndarray]] = None, rate: int = RATE) -> Path:
    """utts: utt number -> transcript (None = no transcript line); audio: utt number -> samples
    (missing = a tone; an explicit None = no audio file)."""
    chap_dir = Path(subset_dir) / spk / chap
    chap_dir.mkdir(parents=True, exist_ok=True)
    audio = audio or {}
    lines = []
    for i, (num, text) in enumerate(sorted(utts.items())):
        utt_id = f"{spk}-{chap}-{num}"
        if text is not None:
            lines.append(f"{utt_id} {text}\n")
        samples = audio.get(num, tone(0.5 + 0.1 * i, 300 + 50 * i))
        if samples is not None:
            sf.write(str(chap_dir / f"{utt_id}.flac"), samples, rate, format="FLAC", subtype="PCM_16")
    (chap_dir / f"{spk}-{chap}.trans.txt").write_text("".join(lines))
    return chap_dir


def sentence(i: int) -> str:
    return " ".join(WORDS[(i + k) % len(WORDS)] for k in range(2 + i % 3))


def write_corpus(root: Path, n_train: int = 6, n_dev: int = 3) -> Path:
    for subset, spk, n in (("train-tone", "11", n_train), ("dev-tone", "22", n_dev)):
        write_chapter(root / subset, spk, "5", {f"{i:04d}": sentence(i) for i in range(n)})
    return root


def prepare(root: Path, out: Path, vocab_type: str = "char") -> Path:
    from sigma_plugin.asr.prep_fbank import prep_subset
    from sigma_plugin.asr.prep_vocab import prep_vocab
    for subset in ("train-tone", "dev-tone"):
        prep_subset(root, subset, out)
    prep_vocab(out, ["train-tone"], vocab_type=vocab_type, vocab_size=20)
    return out


def write_speakers(subset_dir: Path, names: Dict[str, str]) -> Path:
    """SPEAKERS.txt as the speech corpus builder writes it (speaker id -> voice name)."""
    lines = [";ID    |SEX| SUBSET          |MINUTES| NAME"]
    lines += [f"{spk:<6}| F | {Path(subset_dir).name:<16}|   0.10| {name}" for spk, name in sorted(names.items())]
    path = Path(subset_dir) / "SPEAKERS.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def write_recipe_corpus(root: Path, subsets: Dict[str, int]) -> Path:
    """Subsets of tone "speech" (subset name -> utterances), two speakers each (voices
    tone:low and tone:high in SPEAKERS.txt), for the recipe tests:
    root/SUBSET/SPK/CHAPTER/*.flac + .trans.txt."""
    for k, (subset, n) in enumerate(sorted(subsets.items())):
        names = {}
        for s, (spk, voice) in enumerate(((f"{k + 1}1", "tone:low"), (f"{k + 1}2", "tone:high"))):
            nums = range(s, n, 2)
            write_chapter(Path(root) / subset, spk, "7", {f"{i:04d}": sentence(i) for i in nums})
            names[spk] = voice
        write_speakers(Path(root) / subset, names)
    return Path(root)
