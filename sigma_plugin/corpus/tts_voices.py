"""The synthetic speakers: espeak-ng accent × variant combinations and flite voices.

Training uses one set; dev and test each use voices (accents, variants and flite voices)
that never occur in training, nor in each other.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple


@dataclass(frozen=True)
class Voice:
    engine: str          # "espeak-ng" or "flite"
    name: str            # espeak-ng language voice ("en-us") or flite voice ("kal16")
    variant: str = ""    # espeak-ng variant ("m3", "f2"); "" = the voice's default
    sex: str = "M"

    @property
    def label(self) -> str:
        return f"{self.engine}:{self.name}" + (f"+{self.variant}" if self.variant else "")


def _espeak(accents: Sequence[str], variants: Sequence[str]) -> List[Voice]:
    return [Voice("espeak-ng", a, v, "F" if v.startswith("f") else "M")
            for a in accents for v in variants]


FLITE_SEX = {"kal16": "M", "rms": "M", "awb": "M", "slt": "F", "kal": "M"}

VOICES: Dict[str, List[Voice]] = {
    "train": _espeak(["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-029"],
                     ["", "m1", "m2", "m3", "m4", "f1", "f2", "f3", "f4"])
    + [Voice("flite", "kal16", sex="M"), Voice("flite", "rms", sex="M")],
    "dev": _espeak(["en-gb-x-gbcwmd"], ["m5", "m6"]) + [Voice("flite", "slt", sex="F")],
    "test": _espeak(["en-us-nyc"], ["m7", "f5"]) + [Voice("flite", "awb", sex="M")],
}

# Speaking-rate factors: training varies the rate by ±10 %, evaluation speaks at 1.0.
SPEEDS: Dict[str, Tuple[float, ...]] = {"train": (0.9, 1.0, 1.1), "dev": (1.0,), "test": (1.0,)}

ESPEAK_BASE_WPM = 175


def usable_voices(voices: Sequence[Voice], espeak_languages, espeak_variants, flite_voices
                  ) -> Tuple[List[Voice], List[Voice]]:
    """(voices the unpacked engines provide, voices they lack)."""
    ok, missing = [], []
    for v in voices:
        if v.engine == "espeak-ng":
            have = v.name in espeak_languages and (not v.variant or v.variant in espeak_variants)
        else:
            have = v.name in flite_voices
        (ok if have else missing).append(v)
    return ok, missing
