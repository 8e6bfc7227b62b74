"""One indicator's time series as a table, for the country, a province or a commune:
what a chart shows, in a form a spreadsheet opens (period, value; a choice
indicator: one column per option for an area, the option reported for a commune).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from diemcau.actors import Actor
from diemcau.command.aggregation import MAX_PERIODS, Aggregator
from diemcau.command.exports import Table
from diemcau.command.reports import ReportService
from diemcau.directory.sites import SiteInfo
from diemcau.errors import Invalid

__all__ = ["SeriesTables"]


class SeriesTables:
    """Series tables over the aggregator (areas) and the report service (a commune)."""

    def __init__(self, aggregator: Aggregator, reports: ReportService) -> None:
        self.aggregator = aggregator
        self.reports = reports

    async def area(
        self,
        actor: Actor,
        schema_key: str,
        indicator: str,
        start: date,
        end: date,
        *,
        province_id: int | None = None,
    ) -> Table:
        """The country's (an officer: its province's) or one province's series."""
        series = await self.aggregator.series(
            actor, schema_key, indicator, start, end, province_id=province_id
        )
        points: list[Any] = series["national"]
        if province_id is not None:
            points = next(
                (p["points"] for p in series["provinces"] if p["province_id"] == province_id),
                [None] * len(series["periods"]),
            )
        ind = self.aggregator.schemas.get(schema_key).indicator(indicator)
        if ind.type == "choice":
            keys = [c.key for c in ind.choices]
            table = Table(["period", *keys], ["Kỳ", *[c.label_vi for c in ind.choices]])
            for period, counts in zip(series["periods"], points, strict=True):
                table.rows.append([period, *[(counts or {}).get(k, 0) for k in keys]])
            return table
        table = Table(["period", "value"], ["Kỳ", ind.label_vi])
        for period, value in zip(series["periods"], points, strict=True):
            table.rows.append([period, value])
        return table

    async def commune(
        self, actor: Actor, schema_key: str, indicator: str, start: date, end: date, site: SiteInfo
    ) -> Table:
        """One site's reported values, one row per period (empty: no report)."""
        actor.require_staff("read series")
        actor.check_site(site.id, site.province_id, "report")
        schema = self.reports.schemas.get(schema_key)
        ind = schema.indicator(indicator)
        if ind.type == "text":
            raise Invalid(
                f"indicator: '{indicator}' is free text and has no series", code="not_numeric"
            )
        reports = await self.reports.list_reports(
            actor, schema_key, start=start, end=end, site_id=site.id, limit=5000
        )
        by_period = {r.period: r.values.get(ind.key) for r in reports}
        table = Table(["period", "value"], ["Kỳ", ind.label_vi])
        if end < start:
            raise Invalid("end: must not be before start", code="bad_range")
        periods = schema.periods(start, end)
        if len(periods) > MAX_PERIODS:
            raise Invalid(f"end: at most {MAX_PERIODS} periods at once", code="bad_range")
        for period in periods:
            table.rows.append([period.isoformat(), by_period.get(period)])
        return table
