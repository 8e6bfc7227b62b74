"""A file the browser saves rather than shows: the one shape of every download reply.

Reports, exports and tables are offered as ``attachment`` responses with a file
name; building them in one place keeps the header's form (and the CSV media type)
the same on every route that offers a spreadsheet.
"""

from __future__ import annotations

from typing import Literal

from fastapi import Response

from diemcau.spreadsheet import XLSX_MEDIA_TYPE, Sheet, csv_bytes, xlsx_bytes

__all__ = ["CSV_MEDIA_TYPE", "attachment", "sheet_download"]

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"


def attachment(body: bytes | str, media_type: str, filename: str) -> Response:
    """`body` as a download named `filename` (ASCII: it goes into a header)."""
    disposition = f'attachment; filename="{filename}"'
    return Response(body, media_type=media_type, headers={"Content-Disposition": disposition})


def sheet_download(sheet: Sheet, fmt: Literal["csv", "xlsx"], stem: str) -> Response:
    """One sheet as ``<stem>.csv`` or ``<stem>.xlsx``."""
    if fmt == "xlsx":
        return attachment(xlsx_bytes(sheet), XLSX_MEDIA_TYPE, f"{stem}.xlsx")
    return attachment(csv_bytes(sheet), CSV_MEDIA_TYPE, f"{stem}.csv")
