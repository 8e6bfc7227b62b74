"""Exports of aggregates and raw reports as tables, CSV and XLSX.

`Exporter` reads what an actor may see into a `Table`. A `Table` has machine keys
(the CSV header, stable for scripts) and Vietnamese labels (the XLSX header, for
people). CSV is written with a UTF-8 byte-order mark because Excel otherwise
misreads Vietnamese diacritics; XLSX goes through the shared writer
(`diemcau.spreadsheet`: frozen headings, widths, real date cells, formula-safe text).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Literal

from diemcau.actors import Actor
from diemcau.command.aggregation import Aggregate, Aggregator, ProvinceLabel, province_labels
from diemcau.command.reports import ReportService, ReportView
from diemcau.command.schemas import Indicator, IndicatorSchema
from diemcau.directory.sites import SiteDirectory
from diemcau.spreadsheet import Cell as SheetCell
from diemcau.spreadsheet import Column, Sheet, xlsx_bytes
from diemcau.text import spreadsheet_safe

__all__ = [
    "MAX_EXPORT_REPORTS",
    "ExportKind",
    "Exporter",
    "Table",
    "aggregate_table",
    "reports_table",
    "rows_as_dicts",
    "to_csv",
    "to_xlsx",
]

# Most reports one export returns.
MAX_EXPORT_REPORTS = 200_000

ExportKind = Literal["aggregate", "reports"]

Cell = str | int | float | bool | None

# Submission times are shown in Vietnam's time (UTC+7), like the attendance report.
VIETNAM = timezone(timedelta(hours=7))


@dataclass
class Table:
    keys: list[str]
    labels: list[str]
    rows: list[list[Cell]] = field(default_factory=list)

    @classmethod
    def of(cls, columns: Sequence[tuple[str, str]]) -> Table:
        """An empty table with these (key, Vietnamese label) columns."""
        return cls(keys=[k for k, _ in columns], labels=[v for _, v in columns])


def _indicator_columns(ind: Indicator) -> list[tuple[str, str]]:
    unit = f" ({ind.unit_vi})" if ind.unit_vi else ""
    if ind.type == "int":
        return [(ind.key, f"{ind.label_vi}{unit} – tổng")]
    if ind.type == "percent":
        return [(f"{ind.key}_mean", f"{ind.label_vi} – trung bình (%)")]
    if ind.type == "bool":
        return [(f"{ind.key}_true", f"{ind.label_vi} – số nơi 'có'")]
    if ind.type == "choice":
        return [(f"{ind.key}_{c.key}", f"{ind.label_vi}: {c.label_vi}") for c in ind.choices]
    return []


def aggregate_table(agg: Aggregate, labels: Mapping[int, ProvinceLabel]) -> Table:
    """One row per period for the country, then per period and province."""
    inds = [i for i in agg.schema.indicators if i.type != "text"]
    cols = [c for i in inds for c in _indicator_columns(i)]
    table = Table(
        keys=[
            "period",
            "level",
            "province_code",
            "province_name",
            "reports",
            *[k for k, _ in cols],
        ],
        labels=["Kỳ báo cáo", "Cấp", "Mã tỉnh", "Tên tỉnh", "Số báo cáo", *[v for _, v in cols]],
    )

    def values(pid: int | None, period: date) -> list[Cell]:
        out: list[Cell] = []
        for ind in inds:
            cell = agg.cell(pid, period, ind.key)
            if ind.type == "choice":
                out.extend(cell.counts.get(c.key, 0) for c in ind.choices)
            else:
                out.append(cell.value(ind))
        return out

    for period in agg.periods:
        filed = agg.national_filed.get(period, 0)
        table.rows.append([period.isoformat(), "national", "", "", filed, *values(None, period)])
    pids = sorted(p for p in agg.provinces if p is not None)
    for period in agg.periods:
        for pid in pids:
            label = labels.get(pid)
            table.rows.append(
                [
                    period.isoformat(),
                    "province",
                    label.code if label else str(pid),
                    label.name if label else "",
                    agg.filed.get(pid, {}).get(period, 0),
                    *values(pid, period),
                ]
            )
    return table


def reports_table(
    schema: IndicatorSchema,
    reports: Iterable[ReportView],
    sites: Mapping[int, tuple[str, str]],
    labels: Mapping[int, ProvinceLabel],
) -> Table:
    """One row per report with every indicator value (`sites`: id → (code, name))."""
    inds = list(schema.indicators)
    table = Table(
        keys=[
            "period",
            "site_code",
            "site_name",
            "province_code",
            "late",
            "revision",
            "submitted_at",
            "updated_by",
            *[i.key for i in inds],
        ],
        labels=[
            "Kỳ báo cáo",
            "Mã điểm cầu",
            "Tên điểm cầu",
            "Mã tỉnh",
            "Nộp muộn",
            "Lần sửa",
            "Thời điểm nộp (UTC+07:00)",
            "Người cập nhật",
            *[i.label_vi for i in inds],
        ],
    )
    for r in reports:
        code, name = sites.get(r.site_id, (str(r.site_id), ""))
        label = labels.get(r.province_id) if r.province_id is not None else None
        table.rows.append(
            [
                r.period.isoformat(),
                code,
                name,
                label.code if label else "",
                r.late,
                r.revision,
                r.submitted_at.isoformat(),
                r.updated_by,
                *[r.values.get(i.key) for i in inds],
            ]
        )
    return table


def to_csv(table: Table) -> bytes:
    """The table as CSV: machine keys, then the rows, formula-looking text neutralised.

    Lines end in CRLF (RFC 4180): the writer then quotes every cell holding a
    carriage return, which spreadsheets read as a line break; with bare LF line
    ends a site name like ``"x\\r=2+2"`` came out unquoted and ``=2+2`` began a
    cell of its own line, past the neutralising (found by
    tests/test_fuzz_spreadsheets.py).
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(table.keys)
    for row in table.rows:
        writer.writerow(["" if v is None else _csv_cell(v) for v in row])
    return ("\ufeff" + buf.getvalue()).encode("utf-8", "replace")


def _csv_cell(value: Cell) -> Cell:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, str):
        return spreadsheet_safe(value)
    return value


# Columns holding ISO dates and times as text (stable in CSV), written as real date
# cells in XLSX.
_DATE_KEYS = {"period": date.fromisoformat, "submitted_at": datetime.fromisoformat}


def _dated(keys: Sequence[str], row: Sequence[Cell]) -> list[SheetCell]:
    out: list[SheetCell] = list(row)
    for i, key in enumerate(keys):
        parse = _DATE_KEYS.get(key)
        if parse is not None and isinstance(out[i], str) and out[i]:
            try:
                out[i] = parse(str(out[i]))
            except ValueError:
                pass
    return out


def to_xlsx(table: Table, title: str) -> bytes:
    """A one-sheet workbook: Vietnamese headings, then the machine keys, then the rows."""
    sheet = Sheet(
        title=title,
        columns=[Column(label) for label in table.labels],
        rows=(_dated(table.keys, row) for row in table.rows),
        keys=table.keys,
        tz=VIETNAM,
    )
    return xlsx_bytes(sheet)


def rows_as_dicts(table: Table) -> Sequence[dict[str, Cell]]:
    """The table as records (tests and JSON callers)."""
    return [dict(zip(table.keys, row, strict=True)) for row in table.rows]


class Exporter:
    """Reads the aggregates or the raw reports an actor may see into one `Table`."""

    def __init__(
        self, aggregator: Aggregator, reports: ReportService, sites: SiteDirectory
    ) -> None:
        self.aggregator = aggregator
        self.reports = reports
        self.sites = sites

    async def table(
        self,
        actor: Actor,
        schema_key: str,
        first: date,
        last: date,
        *,
        what: ExportKind = "aggregate",
        province_id: int | None = None,
    ) -> Table:
        """Periods `first`..`last` of one schema, as province/national totals or reports."""
        db = self.sites.db
        if what == "aggregate":
            agg = await self.aggregator.aggregate(
                actor, schema_key, first, last, province_id=province_id
            )
            return aggregate_table(agg, await province_labels(db, agg.provinces))
        reports = await self.reports.list_reports(
            actor,
            schema_key,
            start=first,
            end=last,
            province_id=province_id,
            limit=MAX_EXPORT_REPORTS,
        )
        known = await self.sites.by_ids({r.site_id for r in reports}, reload_missing=True)
        names = {sid: (site.code, site.name) for sid, site in known.items()}
        labels = await province_labels(db, {r.province_id for r in reports})
        return reports_table(self.reports.schemas.get(schema_key), reports, names, labels)
