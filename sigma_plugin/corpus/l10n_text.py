"""Turning gettext (msgid, msgstr) entries into clean parallel sentence pairs.

`clean_entry` does the per-entry cleaning and filtering, `split_key` the aggressive
normalisation that groups near-duplicates, `assign_split` the stable hash split.
"""
from __future__ import annotations

import hashlib
import html
import re
from typing import Optional, Tuple

_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>")
_ENTITY = re.compile(r"&(?:amp|lt|gt|quot|apos|nbsp|#\d+|#x[0-9a-fA-F]+);")
_WS = re.compile(r"\s+")
# printf-style (%s, %-10lu, %1$s, %(name)s, %'d), Qt/LibreOffice (%1, %PRODUCTNAME),
# Python/C# ({0}, {name}, {}), shell-ish ($(ARG1), ${var}).
_PLACEHOLDER = re.compile(
    r"%(?:\([^)]*\))?(?:\d+\$)?[-+ #0']*(?:\*|\d+)?(?:\.(?:\*|\d+))?"
    r"(?:hh|h|ll|l|L|q|j|z|t|I64|I32|I)?[diouxXeEfFgGaAcspnmS%]"
    r"|%[A-Z][A-Z_]+%?|%\d+|\{[^{}\s]*\}|\$\([^)]*\)|\$\{[^}]*\}")
# URLs, e-mail addresses, absolute paths, escapes, bare file names.
_TECHNICAL = re.compile(r"://|www\.|\S@\S+\.\w|^/|\s/\w+/|\\[a-z]|^[-.\w]+\.(?:[a-z]{1,4})$")


def strip_mnemonic(text: str) -> str:
    """Remove keyboard-accelerator markers: GTK `_File`, Qt `&File`, LibreOffice `~File`.

    A marker is removed only when it occurs once in the string and precedes a letter or
    digit (`&&` becomes `&`; `&amp;`-style entities are left for `unescape`).
    """
    text = text.replace("&&", "\x00")
    for marker in "_&~":
        hits = [m for m in re.finditer(re.escape(marker) + r"(?=\w)", text)
                if not (marker == "&" and _ENTITY.match(text, m.start()))]
        if len(hits) == 1 and text.count(marker) == 1:
            i = hits[0].start()
            text = text[:i] + text[i + 1:]
    return text.replace("\x00", "&")


def clean_text(text: str) -> str:
    """One line of plain text: markup tags dropped, accelerators stripped, whitespace collapsed."""
    text = _TAG.sub(" ", text)
    text = strip_mnemonic(text)
    text = _ENTITY.sub(lambda m: html.unescape(m.group(0)), text)
    return _WS.sub(" ", text).strip()


def split_key(english: str) -> str:
    """Lowercase, placeholders and digits removed, non-letters to spaces, whitespace collapsed.

    Entries that differ only in case, numbers, placeholders or punctuation share a key.
    """
    text = _PLACEHOLDER.sub(" ", english).lower()
    text = re.sub(r"[\d_]+", " ", text)
    text = re.sub(r"[^\w]+", " ", text)
    return _WS.sub(" ", text).strip()


def stable_unit(key: str, salt: str = "") -> float:
    """A number in [0, 1) from sha256(salt + key): the same on every machine and Python."""
    digest = hashlib.sha256((salt + key).encode("utf-8")).hexdigest()
    return int(digest[:13], 16) / 16 ** 13


def assign_split(key: str, valid_frac: float, test_frac: float) -> str:
    u = stable_unit(key)
    if u < valid_frac:
        return "valid"
    if u < valid_frac + test_frac:
        return "test"
    return "train"


def clean_entry(msgid: str, msgstr: str, max_words: int = 60) -> Tuple[Optional[Tuple[str, str]], str]:
    """((en, tgt), "") for a usable pair, else (None, reason)."""
    if not msgstr.strip():
        return None, "untranslated"
    if _TECHNICAL.search(msgid):
        return None, "technical"
    en, tgt = clean_text(msgid), clean_text(msgstr)
    if not en or not tgt:
        return None, "empty"
    if en == tgt:
        return None, "untranslated"
    key = split_key(en)
    if not re.search(r"[a-z]{2}", key):
        return None, "format_only"
    if "_" in en or "_" in tgt:
        return None, "technical"
    n_words = len(en.split())
    if n_words > max_words:
        return None, "too_long"
    ratio = len(tgt) / len(en)
    if not (0.3 <= ratio <= 3.5) and max(len(tgt), len(en)) > 12:
        return None, "length_ratio"
    return (en, tgt), ""
