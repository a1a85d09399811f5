"""Exact and near-duplicate paragraphs, first occurrence wins.

Exact: paragraphs equal after lower-casing, dropping digits and punctuation and collapsing
whitespace ("Python 3.11 docs." and "python 3.12 docs" are the same paragraph).

Near: MinHash over word 3-grams of that normalised text with locality-sensitive banding
(Broder 1997; Leskovec, Rajaraman & Ullman, "Mining of Massive Datasets", ch. 3). A paragraph
is a near duplicate when one of its bands equals the same band of an earlier kept paragraph.
With 10 bands of 5 hashes, a pair at Jaccard similarity 0.8 is caught with probability
1 - (1 - 0.8^5)^10 = 0.98, at 0.5 with 0.27 and at 0.3 with 0.02.
"""
from __future__ import annotations

import hashlib
import re
import zlib
from typing import Iterable, List

import numpy as np

_NORMALISE = re.compile(r"[\W\d_]+")
_PRIME = np.uint64((1 << 31) - 1)


def normalise(paragraph: str) -> str:
    """Lower case, digits/punctuation/underscores to spaces, whitespace collapsed."""
    return _NORMALISE.sub(" ", paragraph.lower()).strip()


def exact_key(paragraph: str) -> int:
    """64-bit key of the normalised paragraph."""
    return int.from_bytes(hashlib.blake2b(normalise(paragraph).encode("utf-8"),
                                          digest_size=8).digest(), "big")


class NearDuplicateIndex:
    """Remembers the MinHash bands of the paragraphs it has kept."""

    def __init__(self, bands: int = 10, rows: int = 5, shingle: int = 3, seed: int = 1):
        if bands < 1 or rows < 1 or shingle < 1:
            raise ValueError(f"bands, rows and shingle must be positive, got {bands}, {rows}, {shingle}")
        self.bands, self.rows, self.shingle = bands, rows, shingle
        rng = np.random.default_rng(seed)
        n = bands * rows
        self._a = rng.integers(1, int(_PRIME), size=n, dtype=np.uint64)
        self._b = rng.integers(0, int(_PRIME), size=n, dtype=np.uint64)
        # per-band multipliers that fold a band's `rows` values into one 64-bit key
        self._fold = rng.integers(1, 2 ** 63, size=(bands, rows), dtype=np.uint64) | np.uint64(1)
        self._seen = set()

    def signature(self, paragraph: str) -> np.ndarray:
        """The paragraph's MinHash signature (bands * rows values below 2^31)."""
        words = normalise(paragraph).split() or [""]
        h = np.fromiter((zlib.crc32(w.encode("utf-8")) for w in words), dtype=np.uint64,
                        count=len(words))
        k = min(self.shingle, len(words))
        shingles = np.zeros(len(words) - k + 1, dtype=np.uint64)
        for i in range(k):  # combine k consecutive word hashes (wrapping 64-bit arithmetic)
            shingles = shingles * np.uint64(1000003) + h[i:len(words) - k + 1 + i]
        shingles %= _PRIME
        values = (self._a[:, None] * shingles[None, :] + self._b[:, None]) % _PRIME
        return values.min(axis=1)

    def band_keys(self, paragraph: str) -> List[int]:
        sig = self.signature(paragraph).reshape(self.bands, self.rows)
        keys = (sig * self._fold).sum(axis=1)  # wraps modulo 2^64
        return [(i << 64) | int(k) for i, k in enumerate(keys)]

    def add_if_new(self, paragraph: str) -> bool:
        """True (and remembered) unless a band matches an earlier kept paragraph."""
        keys = self.band_keys(paragraph)
        if any(k in self._seen for k in keys):
            return False
        self._seen.update(keys)
        return True


class Deduplicator:
    """Exact then near-duplicate filtering over a stream of paragraphs; counts what it drops."""

    def __init__(self, near: bool = True, **near_options):
        self._exact = set()
        self._near = NearDuplicateIndex(**near_options) if near else None
        self.dropped_exact = 0
        self.dropped_near = 0

    def keep(self, paragraph: str) -> bool:
        key = exact_key(paragraph)
        if key in self._exact:
            self.dropped_exact += 1
            return False
        self._exact.add(key)
        if self._near is not None and not self._near.add_if_new(paragraph):
            self.dropped_near += 1
            return False
        return True


def deduplicate(paragraphs: Iterable[str], near: bool = True, **near_options) -> List[str]:
    """The paragraphs that are neither exact nor near duplicates of an earlier one, in order."""
    dedup = Deduplicator(near=near, **near_options)
    return [p for p in paragraphs if dedup.keep(p)]
