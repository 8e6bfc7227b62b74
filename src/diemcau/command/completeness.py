"""Reporting completeness: who has filed a schema's report for a period, by province
and by commune, and the reporting rate over recent periods.

This is the "reporting rate" table health information systems keep: for each
province the sites expected to report (the schema's ``reporting_kinds``, not
revoked), how many filed, how many of those late, how many are missing; then,
for one province, each site with its status and its latest report (for a
missing site: the last one it ever filed, which tells "silent since Monday"
from "never reported"). Province totals come from `ReportService.filing_status`,
so this table and the overdue-report alerts count the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Literal

from sqlalchemy import func, select

from diemcau.actors import Actor
from diemcau.command.aggregation import (
    Aggregator,
    province_cells,
    province_code,
    province_labels,
)
from diemcau.command.exports import Table
from diemcau.command.models import Report
from diemcau.command.report_views import Summary, rate
from diemcau.command.reports import ReportService
from diemcau.command.timeutil import aware
from diemcau.directory.sites import SiteDirectory, SiteInfo
from diemcau.records import iso
from diemcau.store import Database

__all__ = ["Completeness", "SiteState", "Summary"]

SiteState = Literal["all", "missing", "late", "filed"]

# Most periods the rate-over-time table spans.
MAX_TREND = 31

_PROVINCE_COLS = [
    ("province_id", "Mã số tỉnh"),
    ("province_code", "Mã tỉnh"),
    ("province_name", "Tỉnh/thành"),
    ("expected", "Phải báo cáo"),
    ("filed", "Đã báo cáo"),
    ("on_time", "Đúng hạn"),
    ("late", "Muộn"),
    ("missing", "Chưa báo cáo"),
    ("rate", "Tỷ lệ báo cáo"),
    ("on_time_rate", "Tỷ lệ đúng hạn"),
]

_SITE_COLS = [
    ("site_code", "Mã điểm cầu"),
    ("site_name", "Tên điểm cầu"),
    ("status", "Tình trạng"),
    ("report_period", "Kỳ của báo cáo gần nhất"),
    ("submitted_at", "Nộp lúc"),
    ("updated_at", "Cập nhật lúc"),
    ("revision", "Lần sửa"),
    ("report_id", "Số báo cáo"),
]


class Completeness:
    """The completeness tables of the situation-reports page.

    Args:
        db: the store.
        reports: the report service (schemas, scope checks, filing status).
        aggregator: filed counts per period (the rate over time).
        sites: the directory's read model of sites.
    """

    def __init__(
        self, db: Database, reports: ReportService, aggregator: Aggregator, sites: SiteDirectory
    ) -> None:
        self.db = db
        self.reports = reports
        self.aggregator = aggregator
        self.sites = sites

    async def by_province(
        self, actor: Actor, schema_key: str, period: date
    ) -> tuple[Table, Summary]:
        """Expected, filed (on time, late) and missing per province, with the totals."""
        status = await self.reports.filing_status(actor, schema_key, period, list_limit=0)
        labels = await province_labels(self.db, [p.province_id for p in status.provinces])
        table = Table.of(_PROVINCE_COLS)
        rows = [p for p in status.provinces if p.province_id is not None]
        rows.sort(key=lambda p: province_code(p.province_id, labels))
        for p in rows:
            table.rows.append(
                [
                    *province_cells(p.province_id, labels),
                    p.expected,
                    p.filed,
                    p.filed - p.late,
                    p.late,
                    p.missing,
                    rate(p.filed, p.expected),
                    rate(p.filed - p.late, p.expected),
                ]
            )
        return table, status.summary()

    async def _expected(
        self, actor: Actor, kinds: Sequence[str], scope: int | None
    ) -> list[SiteInfo]:
        await self.sites.refresh_if_changed()
        return [
            s
            for s in await self.sites.all()
            if s.kind in kinds and (scope is None or s.province_id == scope)
        ]

    async def sites_table(
        self,
        actor: Actor,
        schema_key: str,
        period: date,
        *,
        province_id: int | None = None,
        state: SiteState = "missing",
        limit: int = 5000,
    ) -> Table:
        """Each expected site of a province (or all in reach) with its status and latest report.

        For a site that filed, the latest report is this period's; for a missing
        one, the last report it filed before the period (empty if it never did).
        """
        actor.require_staff("see who has filed")
        schema = self.reports.schemas.get(schema_key)
        period = schema.normalise_period(period)
        scope = actor.scope(province_id)
        expected = await self._expected(actor, schema.reporting_kinds, scope)
        ids = [s.id for s in expected]
        current: dict[int, Report] = {}
        last: dict[int, Report] = {}
        async with self.db.session() as s:
            for i in range(0, len(ids), 900):
                chunk = ids[i : i + 900]
                q = select(Report).where(
                    Report.schema_key == schema.key,
                    Report.period == period,
                    Report.site_id.in_(chunk),
                )
                current.update({r.site_id: r for r in (await s.scalars(q)).all()})
                silent = [sid for sid in chunk if sid not in current]
                if not silent or state in ("late", "filed"):
                    continue
                latest = (
                    select(Report.site_id, func.max(Report.period).label("p"))
                    .where(
                        Report.schema_key == schema.key,
                        Report.period < period,
                        Report.site_id.in_(silent),
                    )
                    .group_by(Report.site_id)
                    .subquery()
                )
                q = (
                    select(Report)
                    .join(
                        latest, (Report.site_id == latest.c.site_id) & (Report.period == latest.c.p)
                    )
                    .where(Report.schema_key == schema.key)
                )
                last.update({r.site_id: r for r in (await s.scalars(q)).all()})
        table = Table.of(_SITE_COLS)
        for site in sorted(expected, key=lambda x: (x.province_code, x.code)):
            rep = current.get(site.id)
            status = "missing" if rep is None else ("late" if rep.late else "filed")
            if state != "all" and status != state:
                continue
            shown = rep if rep is not None else last.get(site.id)
            table.rows.append(
                [
                    site.code,
                    site.name,
                    status,
                    shown.period.isoformat() if shown else None,
                    iso(aware(shown.submitted_at)) if shown else None,
                    iso(aware(shown.updated_at)) if shown else None,
                    shown.revision if shown else None,
                    shown.id if shown else None,
                ]
            )
            if len(table.rows) >= limit:
                break
        return table

    async def trend(self, actor: Actor, schema_key: str, start: date, end: date) -> Table:
        """The reporting rate per province and period (filed / expected now), oldest first.

        Expected counts are today's directory; a past period's rate is measured
        against the sites that exist now.
        """
        schema = self.reports.schemas.get(schema_key)
        periods = schema.periods(start, end)[-MAX_TREND:]
        # One indicator is enough: the report counts ride along with any of them.
        agg = await self.aggregator.aggregate(
            actor,
            schema_key,
            periods[0],
            periods[-1],
            indicators=[schema.indicators[0].key],
        )
        expected: dict[int | None, int] = {}
        for site in await self._expected(actor, schema.reporting_kinds, actor.province_id):
            expected[site.province_id] = expected.get(site.province_id, 0) + 1
        labels = await province_labels(self.db, expected)
        table = Table(
            keys=[
                "province_id",
                "province_code",
                "province_name",
                *[p.isoformat() for p in periods],
            ],
            labels=[
                "Mã số tỉnh",
                "Mã tỉnh",
                "Tỉnh/thành",
                *[p.strftime("%d/%m/%Y") for p in periods],
            ],
        )
        pids = sorted(
            (p for p in expected if p is not None), key=lambda p: province_code(p, labels)
        )
        for pid in pids:
            filed = agg.filed.get(pid, {})
            table.rows.append(
                [
                    *province_cells(pid, labels),
                    *[rate(filed.get(p, 0), expected[pid]) for p in periods],
                ]
            )
        return table
