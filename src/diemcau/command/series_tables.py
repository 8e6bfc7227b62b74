"""One indicator's time series as a table, for the country, a province or a commune:
what a chart shows, in a form a spreadsheet opens (period, value; a choice
indicator: one column per option for an area, the option reported for a commune).
"""

from __future__ import annotations

from datetime import date

from diemcau.actors import Actor
from diemcau.command.aggregate_replies import Point
from diemcau.command.aggregation import Aggregator, period_window, series_indicator
from diemcau.command.exports import Table
from diemcau.command.reports import ReportService
from diemcau.directory.sites import SiteInfo

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
        points: list[Point] = series["national"]
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
                by_key = counts if isinstance(counts, dict) else {}
                table.rows.append([period, *[by_key.get(k, 0) for k in keys]])
            return table
        table = Table(["period", "value"], ["Kỳ", ind.label_vi])
        for period, value in zip(series["periods"], points, strict=True):
            # Only a choice indicator's points are counts per option (handled above).
            table.rows.append([period, None if isinstance(value, dict) else value])
        return table

    async def commune(
        self, actor: Actor, schema_key: str, indicator: str, start: date, end: date, site: SiteInfo
    ) -> Table:
        """One site's reported values, one row per period (empty: no report)."""
        actor.require_staff("read series")
        actor.check_site(site.id, site.province_id, "report")
        schema = self.reports.schemas.get(schema_key)
        ind = series_indicator(schema, indicator)
        reports = await self.reports.list_reports(
            actor, schema_key, start=start, end=end, site_id=site.id, limit=5000
        )
        by_period = {r.period: r.values.get(ind.key) for r in reports}
        table = Table(["period", "value"], ["Kỳ", ind.label_vi])
        for period in period_window(schema, start, end):
            table.rows.append([period.isoformat(), by_period.get(period)])
        return table
