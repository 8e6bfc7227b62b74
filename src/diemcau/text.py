"""Vietnamese text handling: NFC normalisation and diacritics-free search keys."""

from __future__ import annotations

import re
import unicodedata

__all__ = ["fold", "nfc"]

_SPACES = re.compile(r"\s+")
# Letters that do not decompose into base + combining mark under NFD.
_SPECIAL = str.maketrans({"đ": "d", "Đ": "d"})


def nfc(value: str) -> str:
    """Return `value` NFC-normalised with inner whitespace collapsed and ends trimmed."""
    return _SPACES.sub(" ", unicodedata.normalize("NFC", value)).strip()


def fold(value: str) -> str:
    """Return a lowercase search key without diacritics: "Phường Bến Nghé" -> "phuong ben nghe"."""
    decomposed = unicodedata.normalize("NFD", value.translate(_SPECIAL))
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SPACES.sub(" ", stripped.lower()).strip()
