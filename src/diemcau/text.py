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


# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV
# injection"), also after leading whitespace some readers trim (a space, a line
# break, an ideographic space), and in their full-width forms, which some locales
# fold to the ASCII ones. A tab or carriage return first is refused as such.
_TRIGGERS = ("=", "+", "-", "@", "＝", "＋", "－", "＠")


def spreadsheet_safe(value: str) -> str:
    """Neutralise text a spreadsheet would run as a formula by prefixing a single quote.

    Every CSV and XLSX export goes through this: site names and notes come from
    users and imported files, and "=HYPERLINK(...)" must stay text when staff open
    the file. The rule is checked by tests/test_fuzz_spreadsheets.py.
    """
    if value.startswith(("\t", "\r")) or value.lstrip().startswith(_TRIGGERS):
        return "'" + value
    return value


def spreadsheet_row(values: Iterable[object]) -> list[object]:
    """A CSV row with every text cell passed through `spreadsheet_safe`."""
    return [spreadsheet_safe(v) if isinstance(v, str) else v for v in values]
