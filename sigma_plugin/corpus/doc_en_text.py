"""Which paragraphs count as English prose, how they are counted, and which split a document
goes to. Pure functions.

A paragraph is kept when it has between `min_words` and `max_words` whitespace words, most of
its characters are letters, nearly all of them Latin, few are code symbols ({}[]<>;=|\\^~), and
enough of its words are common English function words (the, of, to, is, ...): this drops
headings, option lists, tables of numbers, signatures and code that escaped the markup filters,
and paragraphs in other languages.
"""
from __future__ import annotations

import hashlib
import re

SPLITS = ("train", "valid", "test")

ENGLISH_FUNCTION_WORDS = frozenset("""
a about above after all also an and any are as at be because been before being below between
both but by can could did do does doing down during each either for from further had has have
having he her here hers him his how however i if in into is it its itself may might more most
must no nor not of off on once only or other our out over own same she should since so some
such than that the their them then there these they this those through to too under until up
upon very was we were what when where whether which while who whom why will with within without
would you your
""".split())

_WORD_EDGE = re.compile(r"^[^\w]+|[^\w]+$")


def tokens(paragraph: str) -> int:
    """Whitespace-separated words: the unit the corpus sizes are given in."""
    return len(paragraph.split())


def english_share(paragraph: str) -> float:
    """Share of the words that are common English function words."""
    words = paragraph.split()
    if not words:
        return 0.0
    hits = sum(1 for w in words if _WORD_EDGE.sub("", w).lower() in ENGLISH_FUNCTION_WORDS)
    return hits / len(words)


def letter_share(paragraph: str) -> float:
    """Share of the non-space characters that are letters."""
    chars = [c for c in paragraph if not c.isspace()]
    if not chars:
        return 0.0
    return sum(c.isalpha() for c in chars) / len(chars)


def latin_share(paragraph: str) -> float:
    """Share of the letters that are Latin (basic, supplement and extended A/B)."""
    letters = [c for c in paragraph if c.isalpha()]
    if not letters:
        return 0.0
    return sum(ord(c) < 0x250 for c in letters) / len(letters)


_CODE_SYMBOLS = frozenset("{}[]<>;=|\\^~")


def symbol_share(paragraph: str) -> float:
    """Share of the non-space characters that are brackets, operators or backslashes,
    which code, signatures and TeX have and prose rarely does."""
    chars = [c for c in paragraph if not c.isspace()]
    if not chars:
        return 0.0
    return sum(c in _CODE_SYMBOLS for c in chars) / len(chars)


def is_prose(paragraph: str, min_words: int = 6, max_words: int = 1000,
             min_english: float = 0.15, min_letters: float = 0.75, min_latin: float = 0.9,
             max_symbols: float = 0.05) -> bool:
    """Whether a paragraph looks like running English text (see the module docstring)."""
    n = tokens(paragraph)
    if n < min_words or n > max_words:
        return False
    return (letter_share(paragraph) >= min_letters and english_share(paragraph) >= min_english
            and latin_share(paragraph) >= min_latin and symbol_share(paragraph) < max_symbols)


def stable_unit(key: str) -> float:
    """A number in [0, 1) fixed by `key` alone (SHA-256), the same on every machine."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") / 2.0 ** 64


def split_of(doc_id: str, valid_frac: float, test_frac: float) -> str:
    """The split of a document, decided by a hash of its id alone: a document never lands
    in two splits, and its split does not depend on the rest of the corpus."""
    u = stable_unit("split:" + doc_id)
    if u < test_frac:
        return "test"
    if u < test_frac + valid_frac:
        return "valid"
    return "train"
