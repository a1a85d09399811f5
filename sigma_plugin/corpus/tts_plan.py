"""Which voice speaks which sentence, at what rate, pitch and loudness: one subset's plan."""
from __future__ import annotations

import random
from collections import defaultdict
from typing import Dict, List, Sequence, Tuple

from . import librispeech_layout as layout
from .tts_voices import GAIN_DB_RANGE, PITCH_RANGE, Voice, check_allowed, engine_shares

SPEAKER_BASE = {"train": 1000, "dev": 2000, "test": 3000}


def shares_to_counts(shares: Dict[str, float], n: int) -> Dict[str, int]:
    """Split n items by shares (largest remainder; ties by name, so it is deterministic)."""
    exact = {k: shares[k] * n for k in sorted(shares)}
    counts = {k: int(v) for k, v in exact.items()}
    for k in sorted(exact, key=lambda k: (-(exact[k] - counts[k]), k))[:n - sum(counts.values())]:
        counts[k] += 1
    return counts


def plan_subset(kind: str, sentences: Sequence[Tuple[str, str]], voices: Sequence[Voice],
                speeds: Sequence[float], seed: int, weights: Dict[str, float] = None) -> List[dict]:
    """Utterances of one subset.

    Engines get shares of the sentences by `weights` (equal when empty); within an engine each
    sentence takes the next (voice, rate) of all combinations in a seeded random order, so
    voices are used evenly. Pitch factor and gain are drawn per utterance. A speaker is a
    voice, a chapter one rate of it.
    """
    if len(voices) > 999:
        raise ValueError(f"{len(voices)} {kind} voices: speaker ids allow at most 999")
    for v in voices:
        check_allowed(v)
    rng = random.Random(f"{seed}-{kind}")
    counts = shares_to_counts(engine_shares(voices, weights or {}), len(sentences))
    engine_of = [e for e, n in counts.items() for _ in range(n)]
    rng.shuffle(engine_of)
    combos = {e: [(vi, si) for vi, v in enumerate(voices) if v.engine == e for si in range(len(speeds))]
              for e in counts}
    queues: Dict[str, List[Tuple[int, int]]] = {e: [] for e in counts}
    per_chapter: Dict[Tuple[int, int], int] = defaultdict(int)
    lo_p, hi_p = PITCH_RANGE.get(kind, (1.0, 1.0))
    lo_g, hi_g = GAIN_DB_RANGE.get(kind, (0.0, 0.0))
    utts = []
    for (spoken, transcript), engine in zip(sentences, engine_of):
        if not queues[engine]:
            queues[engine] = combos[engine][:]
            rng.shuffle(queues[engine])
        vi, si = queues[engine].pop()
        speaker = SPEAKER_BASE[kind] + vi
        chapter = speaker * 10 + si
        index = per_chapter[(speaker, chapter)]
        per_chapter[(speaker, chapter)] += 1
        v = voices[vi]
        utts.append({"id": layout.utterance_id(speaker, chapter, index), "engine": v.engine,
                     "voice": v.name, "variant": v.variant, "sex": v.sex, "speed": speeds[si],
                     "pitch": round(rng.uniform(lo_p, hi_p), 3),
                     "gain_db": round(rng.uniform(lo_g, hi_g), 1),
                     "text": spoken, "transcript": transcript})
    return utts


def utterance_voice(u: dict) -> Voice:
    return Voice(u["engine"], u["voice"], u["variant"], u["sex"])
