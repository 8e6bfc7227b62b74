"""The cards of a provisioning run written as a table: CSV, or an XLSX workbook.

Every cell a spreadsheet would run as a formula is neutralised (`csv_safe`); the
CSV carries a BOM so Excel opens the Vietnamese text correctly.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

from diemcau.directory.provision_cards import Card
from diemcau.spreadsheet import Column, Sheet, write_xlsx
from diemcau.text import spreadsheet_safe

__all__ = ["CSV_HEADER", "csv_safe", "write_csv", "write_xlsx_sheet"]

CSV_HEADER = (
    "Mã điểm cầu (site code)",
    "Tên điểm cầu (site name)",
    "Loại đơn vị (unit type)",
    "Đơn vị cấp trên (parent units)",
    "Tỉnh/thành (province)",
    "Đường dẫn tham gia (join link)",
    "Mã tham gia (join code)",
)


def csv_safe(value: str) -> str:
    """Neutralise a cell a spreadsheet would run as a formula (OWASP CSV injection).

    A cell starting with ``= + - @`` (or tab / carriage return) gets a leading
    single quote, so Excel and LibreOffice show it as text.
    """
    return spreadsheet_safe(value)


def write_csv(path: Path, cards: Sequence[Card]) -> None:
    # utf-8-sig: Excel opens Vietnamese text correctly only with a BOM.
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_HEADER)
        for c in cards:
            writer.writerow(
                [
                    csv_safe(v)
                    for v in (c.code, c.name, c.unit_type, c.parents, c.province, c.link, c.join)
                ]
            )


# Vietnam's time (UTC+7) for the issue date in the workbook.
_VIETNAM = timezone(timedelta(hours=7))


def write_xlsx_sheet(path: Path, title: str, cards: Sequence[Card], issued_at: datetime) -> None:
    """The CSV's columns plus the issue time as a real date cell, for offices using Excel."""
    sheet = Sheet(
        title=title,
        columns=[
            *(Column(h) for h in CSV_HEADER[:5]),
            Column(CSV_HEADER[5], 60),
            Column(CSV_HEADER[6], 40),
            Column("Cấp lúc (issued at, UTC+07:00)", 20),
        ],
        rows=(
            (c.code, c.name, c.unit_type, c.parents, c.province, c.link, c.join, issued_at)
            for c in cards
        ),
        tz=_VIETNAM,
    )
    write_xlsx(path, sheet)
