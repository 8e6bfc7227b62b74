"""The one spreadsheet writer every export shares: XLSX for people, CSV for scripts.

Offices that receive attendance reports, acknowledgements, audit logs, situation
reports and provisioning sheets work in Excel. A `Sheet` is a list of `Column`
headings (Vietnamese first) and rows of typed cells; `xlsx_bytes` writes it with
the heading row in bold and frozen, an auto-filter, column widths that fit the
text, and dates and times as real date cells (so they sort and filter as dates).

Text is made safe the same way in both formats: a value a spreadsheet would run as
a formula gets a leading quote (`text.spreadsheet_safe`), and the control
characters XLSX cannot hold (openpyxl refuses them with an exception) are written
as visible ``\\x07`` escapes, so a name or note from an imported file can never make
an export fail.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

from diemcau.text import spreadsheet_safe

if TYPE_CHECKING:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

__all__ = [
    "XLSX_MEDIA_TYPE",
    "Cell",
    "Column",
    "Sheet",
    "csv_bytes",
    "xlsx_bytes",
    "xlsx_text",
    "write_xlsx",
]

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

Cell = str | int | float | bool | date | datetime | None

DATE_FORMAT = "dd/mm/yyyy"  # the Vietnamese order
DATETIME_FORMAT = "dd/mm/yyyy hh:mm:ss"

# What XLSX (XML 1.0) cannot carry: C0 controls except tab, newline, carriage return;
# the non-characters U+FFFE and U+FFFF; lone surrogates (JSON text may hold them).
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_MAX_CELL = 32_767  # Excel's limit for one cell's text
_SAMPLE_ROWS = 500  # rows measured for column widths
_MIN_WIDTH, _MAX_WIDTH = 6.0, 60.0
_TITLE_ILLEGAL = re.compile(r"[\\/?*\[\]:]")  # Excel refuses these in a tab's name


@dataclass(frozen=True)
class Column:
    """One column: its heading, and optionally a fixed width (characters) and format."""

    heading: str
    width: float | None = None
    number_format: str | None = None


@dataclass
class Sheet:
    """One worksheet.

    Attributes:
        title: the tab's name (cut to Excel's 31 characters).
        columns: the headings, in order.
        rows: the cells, one sequence per row (an iterator is read once).
        keys: an optional second heading row of machine keys (stable for scripts).
        tz: the zone aware datetimes are shown in (Excel cells have no zone; say it
            in the heading).
    """

    title: str
    columns: Sequence[Column]
    rows: Iterable[Sequence[Cell]] = field(default_factory=list)
    keys: Sequence[str] | None = None
    tz: tzinfo = UTC


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def xlsx_text(value: str) -> str:
    """`value` as XLSX can hold it: controls escaped, formulas neutralised, length capped."""
    if _ILLEGAL.search(value):
        value = _ILLEGAL.sub(_escape, value)
    value = spreadsheet_safe(value)  # before the cut: the quote counts towards the limit
    if len(value) > _MAX_CELL:
        value = value[: _MAX_CELL - 1] + "…"
    return value


def _local(value: datetime, tz: tzinfo) -> datetime:
    return value.astimezone(tz).replace(tzinfo=None) if value.tzinfo else value


def _xlsx_value(value: Cell, tz: tzinfo) -> Cell:
    if isinstance(value, str):
        return xlsx_text(value)
    if isinstance(value, datetime):
        return _local(value, tz)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _shown(value: Cell) -> str:
    """Roughly what a cell shows, to size its column."""
    if isinstance(value, datetime):
        return "00/00/0000 00:00:00"
    if isinstance(value, date):
        return "00/00/0000"
    if isinstance(value, float):
        return f"{value:.2f}"
    return "" if value is None else str(value)


def _widths(sheet: Sheet, sample: Sequence[Sequence[Cell]]) -> list[float]:
    out: list[float] = []
    for i, col in enumerate(sheet.columns):
        if col.width is not None:
            out.append(col.width)
            continue
        longest = max([len(col.heading) * 0.8, *(len(_shown(r[i])) for r in sample if i < len(r))])
        out.append(min(_MAX_WIDTH, max(_MIN_WIDTH, longest + 2)))
    return out


def _column_letter(index: int) -> str:
    from openpyxl.utils import get_column_letter

    return str(get_column_letter(index))


def _add_sheet(wb: Workbook, sheet: Sheet) -> None:
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font, PatternFill

    rows: Iterator[Sequence[Cell]] = iter(sheet.rows)
    sample = list(itertools.islice(rows, _SAMPLE_ROWS))
    title = _TITLE_ILLEGAL.sub("-", _ILLEGAL.sub("", sheet.title)).strip("' ")[:31]
    ws = wb.create_sheet(title=title or "diemcau")
    ncols = len(sheet.columns)
    for i, width in enumerate(_widths(sheet, sample), start=1):
        ws.column_dimensions[_column_letter(i)].width = width
    header_rows = 2 if sheet.keys is not None else 1
    ws.freeze_panes = f"A{header_rows + 1}"
    if ncols:
        ws.auto_filter.ref = f"A{header_rows}:{_column_letter(ncols)}{header_rows}"
    bold, fill = Font(bold=True), PatternFill("solid", fgColor="E7EAEE")
    wrap = Alignment(wrap_text=True, vertical="top")
    heading: list[WriteOnlyCell] = []
    for col in sheet.columns:
        cell = WriteOnlyCell(ws, value=xlsx_text(col.heading))
        cell.font, cell.fill, cell.alignment = bold, fill, wrap
        heading.append(cell)
    ws.append(heading)
    if sheet.keys is not None:
        ws.append([xlsx_text(k) for k in sheet.keys])
    formats = [col.number_format for col in sheet.columns]
    for row in itertools.chain(sample, rows):
        out: list[Cell | WriteOnlyCell] = []
        for i, value in enumerate(row):
            shown = _xlsx_value(value, sheet.tz)
            fmt = formats[i] if i < ncols else None
            if fmt is None and isinstance(shown, datetime):
                fmt = DATETIME_FORMAT
            elif fmt is None and isinstance(shown, date):
                fmt = DATE_FORMAT
            if fmt is None:
                out.append(shown)
            else:
                cell = WriteOnlyCell(ws, value=shown)
                cell.number_format = fmt
                out.append(cell)
        ws.append(out)


def xlsx_bytes(*sheets: Sheet) -> bytes:
    """A workbook with one worksheet per `Sheet` (write-only: flat memory for big ones)."""
    # Imported here: openpyxl is only needed when someone exports.
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    for sheet in sheets:
        _add_sheet(wb, sheet)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def write_xlsx(path: Path, *sheets: Sheet) -> None:
    """`xlsx_bytes` written to `path`."""
    path.write_bytes(xlsx_bytes(*sheets))


def _csv_value(value: Cell, tz: tzinfo) -> str | int | float:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, datetime):
        return _local(value, tz).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, str):
        return spreadsheet_safe(value)
    return value


def csv_bytes(sheet: Sheet) -> bytes:
    """The sheet as UTF-8 CSV with a byte-order mark (Excel misreads diacritics without).

    The header is the machine keys when the sheet has them, else the headings.
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    header = sheet.keys if sheet.keys is not None else [c.heading for c in sheet.columns]
    writer.writerow([spreadsheet_safe(h) for h in header])
    for row in sheet.rows:
        writer.writerow([_csv_value(v, sheet.tz) for v in row])
    return ("\ufeff" + buf.getvalue()).encode("utf-8", "replace")
