"""The synthetic speakers and which subset each one speaks in.

A voice is one engine voice (espeak-ng/espeak accent × voice variant, a flite voice, a
festival voice). Training uses most of them; dev and test each use voices whose speaker
family never occurs in training nor in the other evaluation set: held-out accents spoken
with held-out variants, and whole natural-speaker voices (flite `awb` for dev, festival
`ked_diphone` for test). Voices built from the CMU ARCTIC `slt` recordings are reserved for
evaluation outside this corpus and are refused everywhere.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, Iterable, List, Sequence, Tuple

ENGINES = ("espeak-ng", "espeak", "flite", "festival")
KINDS = ("train", "dev", "test")


@dataclass(frozen=True)
class Voice:
    engine: str          # one of ENGINES
    name: str            # accent ("en-us"), flite voice ("kal16") or festival voice ("kal_diphone")
    variant: str = ""    # espeak variant ("m3", "f2", "klatt"); "" = the accent's default
    sex: str = "M"

    @property
    def label(self) -> str:
        return f"{self.engine}:{self.name}" + (f"+{self.variant}" if self.variant else "")


# CMU ARCTIC `slt` (flite `slt`, festival `cmu_us_slt_arctic_*`): never spoken by this corpus.
_RESERVED = re.compile(r"(^|[_\W])slt($|[_\W])", re.IGNORECASE)


class ReservedVoiceError(ValueError):
    """A voice reserved for evaluation elsewhere was asked for."""


def check_allowed(voice: Voice) -> Voice:
    if _RESERVED.search(voice.name) or _RESERVED.search(voice.variant):
        raise ReservedVoiceError(
            f"voice {voice.label} is built from CMU ARCTIC slt, which is reserved for evaluation "
            f"outside this corpus; it is never used here")
    return voice


# Held out of training, per subset: accents (both espeak engines), espeak variants, and
# whole voices of the other engines.
HELD_OUT: Dict[str, Dict[str, frozenset]] = {
    "dev": {"accents": frozenset({"en-gb-x-gbcwmd", "en-wm"}),
            "variants": frozenset({"m5", "f5", "klatt3", "Gene"}),
            "voices": frozenset({"flite:awb"})},
    "test": {"accents": frozenset({"en-us-nyc", "en-n"}),
             "variants": frozenset({"m6", "f4", "klatt4", "Lee"}),
             "voices": frozenset({"festival:ked_diphone"})},
}
# Variants that do not make a speaking voice (whispered, distorted, or names espeak cannot parse).
UNUSABLE_VARIANTS = frozenset({"whisper", "whisperf", "Demonic", "UniRobot", "anikaRobot"})
# Voices that speak only a fixed domain (flite's talking clock).
UNUSABLE_VOICES = frozenset({"flite:awb_time"})

# Speaking-rate factors; a chapter is one rate of one speaker. Evaluation speaks at 1.0.
SPEEDS: Dict[str, Tuple[float, ...]] = {"train": (0.8, 0.9, 1.0, 1.1, 1.2), "dev": (1.0,), "test": (1.0,)}
# Per-utterance pitch factor and gain (dB below a 0.9 peak), drawn uniformly.
PITCH_RANGE: Dict[str, Tuple[float, float]] = {"train": (0.8, 1.25), "dev": (1.0, 1.0), "test": (1.0, 1.0)}
GAIN_DB_RANGE: Dict[str, Tuple[float, float]] = {"train": (-20.0, 0.0), "dev": (-6.0, -6.0), "test": (-6.0, -6.0)}

# Share of training utterances per engine (renormalised over the engines present);
# evaluation subsets give each engine present the same share.
TRAIN_ENGINE_WEIGHTS: Dict[str, float] = {"espeak-ng": 0.5, "espeak": 0.2, "flite": 0.2, "festival": 0.1}


def subset_of(voice: Voice) -> str:
    """"train", "dev", "test", or "" (not used)."""
    check_allowed(voice)
    if voice.label in UNUSABLE_VOICES or voice.variant in UNUSABLE_VARIANTS or " " in voice.variant:
        return ""
    if voice.engine in ("espeak-ng", "espeak"):
        for kind, held in HELD_OUT.items():
            if voice.name in held["accents"]:
                return kind if voice.variant in held["variants"] else ""
        held_variants = set().union(*(h["variants"] for h in HELD_OUT.values()))
        return "" if voice.variant in held_variants else "train"
    for kind, held in HELD_OUT.items():
        if voice.label in held["voices"]:
            return kind
    return "train"


def split_voices(voices: Iterable[Voice]) -> Dict[str, List[Voice]]:
    """{kind: voices} with reserved voices dropped (never returned) and unusable ones left out."""
    out: Dict[str, List[Voice]] = {k: [] for k in KINDS}
    for v in voices:
        try:
            kind = subset_of(v)
        except ReservedVoiceError:
            continue
        if kind:
            out[kind].append(v)
    return out


def parse_weights(spec: str) -> Dict[str, float]:
    """`espeak-ng=0.5,flite=0.3` -> {engine: weight}; raises ValueError naming what is wrong."""
    weights = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        engine, sep, value = part.partition("=")
        if not sep or engine not in ENGINES:
            raise ValueError(f"{part!r} is not ENGINE=WEIGHT with ENGINE one of {', '.join(ENGINES)}")
        try:
            weights[engine] = float(value)
        except ValueError:
            raise ValueError(f"{part!r}: weight {value!r} is not a number") from None
        if weights[engine] < 0:
            raise ValueError(f"{part!r}: weight must be >= 0")
    return weights


def engine_shares(voices: Sequence[Voice], weights: Dict[str, float]) -> Dict[str, float]:
    """Weights of the engines present in `voices`, summing to 1 (equal if `weights` is empty)."""
    present = sorted({v.engine for v in voices})
    raw = {e: (weights.get(e, 0.0) if weights else 1.0) for e in present}
    total = sum(raw.values())
    if total <= 0:
        raise ValueError(f"the engine weights give no share to any of the voices' engines ({', '.join(present)})")
    return {e: w / total for e, w in raw.items() if w > 0}
