"""A token n-gram language model for shallow fusion in CTC beam search (pure Python).

Interpolated Witten-Bell smoothing (Witten & Bell 1991; Chen & Goodman 1998, eq. 16): for a
history h and its shortened history h' (first token dropped),

    P(w | h) = (c(h w) + T(h) · P(w | h')) / (c(h) + T(h))

where c counts n-grams in the training text and T(h) is the number of distinct tokens seen after
h; a history never seen falls back to P(w | h'), and the empty history interpolates with the
uniform distribution over the vocabulary. Sentences are wrapped in ``bos`` ... ``eos``; ``eos``
is predicted, ``bos`` never is.

Token ids are stored as one character each (``chr(_BASE + id)``), so an n-gram is a short string:
compact and quick to hash, for the character and small SentencePiece vocabularies of the ASR
recipes. The file format is plain text (gzip): a header line, then ``ids<TAB>count`` per n-gram.
"""
from __future__ import annotations

import gzip
import json
import math
from collections import Counter
from pathlib import Path
from typing import Dict, Iterable, Sequence, Tuple

_BASE = 0x10000          # ids become code points from here on (beyond the BMP: no surrogates)
_MAX_ID = 0x10FFFF - _BASE
_FORMAT = "sigma_plugin-ngram-wb v1"


def _encode(ids: Iterable[int]) -> str:
    return "".join(chr(_BASE + i) for i in ids)


class NgramLM:
    """Interpolated Witten-Bell n-gram LM over integer token ids (see the module docstring)."""

    def __init__(self, order: int, vocab_size: int, bos: int, eos: int, counts: Dict[str, int]):
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order}")
        if vocab_size < 1 or not (0 <= bos <= _MAX_ID and 0 <= eos <= _MAX_ID):
            raise ValueError(f"bad vocabulary: size {vocab_size}, bos {bos}, eos {eos}")
        self.order, self.vocab_size, self.bos, self.eos = order, vocab_size, bos, eos
        self.counts = counts                      # n-gram (1..order tokens) -> count
        self.history_total: Counter = Counter()   # h -> c(h ·)
        self.history_types: Counter = Counter()   # h -> T(h)
        for gram, c in counts.items():
            self.history_total[gram[:-1]] += c
            self.history_types[gram[:-1]] += 1
        self._cache: Dict[Tuple[str, str], float] = {}

    @classmethod
    def train(cls, sentences: Iterable[Sequence[int]], order: int, vocab_size: int, bos: int,
              eos: int) -> "NgramLM":
        """Count every n-gram (1..order tokens) of ``bos`` + sentence + ``eos``."""
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order}")
        counts: Counter = Counter()
        n_sentences = 0
        for ids in sentences:
            text = _encode([bos, *ids, eos])
            n_sentences += 1
            for end in range(2, len(text) + 1):        # the token at end-1 is predicted (never bos)
                for n in range(1, min(order, end) + 1):
                    counts[text[end - n:end]] += 1
        if n_sentences == 0:
            raise ValueError("no sentences to train the n-gram LM on")
        return cls(order, vocab_size, bos, eos, dict(counts))

    def _prob(self, history: str, token: str) -> float:
        p = 1.0 / self.vocab_size
        for k in range(0, len(history) + 1):
            h = history[len(history) - k:] if k else ""
            total = self.history_total.get(h)
            if total is None:
                break  # a longer history containing this one was never seen either
            types = self.history_types[h]
            p = (self.counts.get(h + token, 0) + types * p) / (total + types)
        return p

    def log_prob(self, history: Sequence[int], token: int) -> float:
        """ln P(token | history); ``history`` is the sentence so far (without ``bos``)."""
        h = ""
        if self.order > 1:  # the last order-1 tokens of bos + history
            tail = list(history[-(self.order - 1):])
            h = _encode(tail if len(tail) == self.order - 1 else [self.bos, *tail])
        key = (h, chr(_BASE + token))
        value = self._cache.get(key)
        if value is None:
            value = math.log(self._prob(*key))
            self._cache[key] = value
        return value

    def sentence_log_prob(self, ids: Sequence[int]) -> float:
        """ln P(ids + eos)."""
        return sum(self.log_prob(ids[:i], t) for i, t in enumerate([*ids, self.eos]))

    def save(self, path) -> None:
        header = {"format": _FORMAT, "order": self.order, "vocab_size": self.vocab_size,
                  "bos": self.bos, "eos": self.eos}
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(json.dumps(header) + "\n")
            for gram, c in self.counts.items():
                f.write(" ".join(str(ord(ch) - _BASE) for ch in gram) + f"\t{c}\n")

    @classmethod
    def load(cls, path) -> "NgramLM":
        path = Path(path)
        try:
            with gzip.open(path, "rt", encoding="utf-8") as f:
                header = json.loads(f.readline())
                if header.get("format") != _FORMAT:
                    raise ValueError("not an n-gram LM file")
                counts = {}
                for line in f:
                    ids, c = line.rstrip("\n").split("\t")
                    counts[_encode(int(i) for i in ids.split())] = int(c)
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: cannot read an n-gram LM ({e})") from None
        return cls(header["order"], header["vocab_size"], header["bos"], header["eos"], counts)
