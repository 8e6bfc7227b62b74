"""Tables of the staff pages as JSON for the page or CSV/XLSX for a spreadsheet.

Every table a page shows is served by one route that answers in three formats,
so "export" always gives exactly the rows on screen (same filters, same scope),
with the spreadsheet-safe rules of `command.exports` (a BOM for Excel, formula-
looking text neutralised).
"""

from __future__ import annotations

from typing import Literal

from fastapi import Response
from fastapi.responses import JSONResponse

from diemcau.api.downloads import CSV_MEDIA_TYPE, attachment
from diemcau.command.exports import Table, to_csv, to_xlsx
from diemcau.spreadsheet import XLSX_MEDIA_TYPE

__all__ = ["Format", "table_response"]

Format = Literal["json", "csv", "xlsx"]


def table_response(table: Table, fmt: Format, name: str, **extra: object) -> Response:
    """`table` as ``{"keys", "labels", "rows", **extra}`` or as a downloadable file.

    Args:
        table: the rows.
        fmt: "json" for the page, "csv" or "xlsx" for a download.
        name: the file name without extension (ASCII: it goes into a header).
        extra: more JSON fields for the page (ignored by the file formats).
    """
    if fmt == "json":
        return JSONResponse(
            {"keys": table.keys, "labels": table.labels, "rows": table.rows, **extra}
        )
    if fmt == "xlsx":
        return attachment(to_xlsx(table, name), XLSX_MEDIA_TYPE, f"{name}.xlsx")
    return attachment(to_csv(table), CSV_MEDIA_TYPE, f"{name}.csv")
