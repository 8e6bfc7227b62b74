"""Reading a report CSV file into checked lines, every refusal naming its line.

`ReportService.import_csv` writes all of a file or none of it, so every line
is read and checked here first. The file comes from staff spreadsheets and
was fuzzed (docs/security.md, "What was fuzzed and what it found"): a bare CR
ends a line (old Mac line ends), a quoted cell may span lines and the line
named is where its record starts, and the csv module's own refusals (a cell
past its field limit) are answered as a bad file naming the line, never as a
server error.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from diemcau.command.report_views import parse_period
from diemcau.command.schemas import IndicatorSchema, Value
from diemcau.errors import Invalid, NotFound

__all__ = ["CsvLine", "read_report_csv"]


@dataclass(frozen=True, slots=True)
class CsvLine:
    """One report line of the file: where it starts, for whom, when, what values."""

    line: int
    site_code: str
    period: date
    values: dict[str, Value]


def _records(text: str) -> list[tuple[int, list[str]]]:
    """Every record with the line it starts on; a malformed file names where it stopped."""
    reader = csv.reader(io.StringIO(text, newline=""))
    out: list[tuple[int, list[str]]] = []
    start = 1
    try:
        for cells in reader:
            out.append((start, cells))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise Invalid(f"line {start}: malformed CSV: {exc}", code="bad_csv") from None
    return out


def _header(schema: IndicatorSchema, cells: list[str]) -> list[str]:
    header = [h.strip() for h in cells]
    if "site_code" not in header:
        raise Invalid("line 1: the header needs a 'site_code' column", code="bad_csv")
    known = {i.key for i in schema.indicators}
    for col in header:
        if col not in known and col not in ("site_code", "period"):
            raise Invalid(
                f"line 1: {col}: unknown indicator in schema '{schema.key}'", code="bad_csv"
            )
    return header


def read_report_csv(
    schema: IndicatorSchema,
    text: str,
    *,
    period_of: Callable[[date | None], date],
) -> tuple[list[CsvLine], list[str]]:
    """The good lines of a report CSV and one ``line N: why`` per bad line.

    Args:
        schema: the indicators the columns name.
        text: the decoded file (a leading byte-order mark is ignored).
        period_of: the checked period of a line given its ``period`` cell (None
            when the line has none): the caller's default and its future check.

    Raises:
        Invalid: the file as a whole is unreadable (empty, malformed, bad header).
    """
    records = _records(text.lstrip("\ufeff"))
    if not records:
        raise Invalid("csv: the file is empty", code="bad_csv")
    header = _header(schema, records[0][1])
    known = {i.key for i in schema.indicators}
    lines: list[CsvLine] = []
    errors: list[str] = []
    seen: dict[tuple[str, date], int] = {}
    for lineno, cells in records[1:]:
        if not any(c.strip() for c in cells):
            continue
        try:
            if len(cells) != len(header):
                raise Invalid(f"expected {len(header)} columns, found {len(cells)}")
            record = dict(zip(header, cells, strict=True))
            code = record["site_code"].strip()
            if not code:
                raise Invalid("site_code: is empty")
            p_text = record.get("period", "").strip()
            the_period = period_of(parse_period(p_text) if p_text else None)
            raw = {k: schema.indicator(k).parse_cell(v) for k, v in record.items() if k in known}
            checked = schema.validate_values(raw)
            if (code, the_period) in seen:
                raise Invalid(
                    f"site_code: {code} already appears on line {seen[(code, the_period)]}"
                )
            seen[(code, the_period)] = lineno
            lines.append(CsvLine(lineno, code, the_period, checked))
        except (Invalid, NotFound) as exc:
            errors.append(f"line {lineno}: {exc.message}")
    return lines, errors
