"""Vietnamese text handling: NFC normalisation and diacritics-free search keys."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

__all__ = ["fold", "nfc", "spreadsheet_safe", "spreadsheet_row"]

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


# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: str) -> str:
    """Neutralise text a spreadsheet would run as a formula by prefixing a single quote.

    Every CSV export goes through this: site names and notes come from users and
    imported files, and "=HYPERLINK(...)" must stay text when staff open the file.
    """
    return "'" + value if value.startswith(_FORMULA_PREFIXES) else value


def spreadsheet_row(values: Iterable[object]) -> list[object]:
    """A CSV row with every text cell passed through `spreadsheet_safe`."""
    return [spreadsheet_safe(v) if isinstance(v, str) else v for v in values]
