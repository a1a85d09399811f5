"""Text normalisation before scoring: upper case, punctuation removed except apostrophes."""
import re
import unicodedata

_SPACES = re.compile(r"\s+")


def normalize_transcript(text: str) -> str:
    """'Don't -- stop, HAL!' -> "DON'T STOP HAL". Punctuation becomes a space (so 'NON-ALIGNED'
    -> 'NON ALIGNED'); typographic apostrophes become "'"."""
    text = unicodedata.normalize("NFKC", text).replace("\u2019", "'").replace("\u2018", "'").upper()
    chars = [" " if unicodedata.category(c).startswith(("P", "S")) and c != "'" else c for c in text]
    return _SPACES.sub(" ", "".join(chars)).strip()
