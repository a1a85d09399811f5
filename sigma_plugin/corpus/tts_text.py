"""Choosing sentences for synthetic speech and writing their LibriSpeech-style transcripts."""
from __future__ import annotations

import random
import re
import unicodedata
from typing import AbstractSet, Iterable, List, Optional, Tuple

_PUNCT_TO_SPACE = re.compile(r"[.,!?;:\"()\[\]{}\u2013\u2014\u2026/-]")
_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*'?")


def normalise_sentence(sentence: str, min_words: int = 3, max_words: int = 20
                       ) -> Optional[Tuple[str, str]]:
    """(text to speak, upper-case transcript), or None if the sentence is not plain words.

    Punctuation becomes spaces, quotes around words go, apostrophes inside words stay
    (DON'T, USER'S, USERS'). Sentences with digits, symbols, non-ASCII letters or
    all-capital acronyms (spoken letter by letter) are rejected, as is a length outside
    [min_words, max_words].
    """
    text = unicodedata.normalize("NFKC", sentence).replace("\u2019", "'").replace("\u2018", "'")
    words = []
    for word in _PUNCT_TO_SPACE.sub(" ", text).split():
        word = word.lstrip("'")
        if word.endswith("'") and not word.lower().endswith("s'"):
            word = word.rstrip("'")
        if not word:
            continue
        if not _WORD.fullmatch(word) or (len(word) > 1 and word.isupper()):
            return None
        words.append(word)
    if not min_words <= len(words) <= max_words:
        return None
    spoken = " ".join(words)
    return spoken + ".", spoken.upper()


def in_vocabulary(transcript: str, vocabulary: AbstractSet[str]) -> bool:
    """Every word (lower case; a possessive 's or s' counts as its stem) is in `vocabulary`."""
    for word in transcript.lower().split():
        if word not in vocabulary and word.rstrip("'") not in vocabulary and not (
                word.endswith("'s") and word[:-2] in vocabulary):
            return False
    return True


def read_vocabulary(lines: Iterable[str]) -> frozenset:
    """A word list (one word a line, e.g. /usr/share/dict/american-english), lower-cased."""
    return frozenset(w.strip().lower() for w in lines if w.strip())


def candidate_sentences(lines: Iterable[str], min_words: int = 3, max_words: int = 20,
                        vocabulary: Optional[AbstractSet[str]] = None,
                        exclude: AbstractSet[str] = frozenset()) -> List[Tuple[str, str]]:
    """Usable (spoken, transcript) pairs in file order, one per distinct transcript.

    With a `vocabulary`, only sentences made of its words (which the engines pronounce as
    words rather than letter by letter); transcripts in `exclude` never occur.
    """
    seen = set(exclude)
    out = []
    for line in lines:
        norm = normalise_sentence(line.strip(), min_words, max_words)
        if norm and norm[1] not in seen and (vocabulary is None or in_vocabulary(norm[1], vocabulary)):
            seen.add(norm[1])
            out.append(norm)
    return out


def transcripts_of(lines: Iterable[str]) -> frozenset:
    """The transcripts the lines would give (any length), to keep them out of a corpus."""
    return frozenset(n[1] for n in (normalise_sentence(l.strip(), 1, 10 ** 6) for l in lines) if n)


def pick_sentences(candidates: List[Tuple[str, str]], counts: List[int], seed: int
                   ) -> List[List[Tuple[str, str]]]:
    """Disjoint random samples of the given sizes (e.g. [n_train, n_dev, n_test])."""
    if sum(counts) > len(candidates):
        raise ValueError(f"{sum(counts)} sentences needed but only {len(candidates)} usable")
    order = list(range(len(candidates)))
    random.Random(seed).shuffle(order)
    groups, start = [], 0
    for n in counts:
        groups.append([candidates[i] for i in order[start:start + n]])
        start += n
    return groups
