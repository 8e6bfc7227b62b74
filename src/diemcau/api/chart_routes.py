"""HTTP routes of the charts page: an indicator's series as a table (the chart's data,
for export) and the top-N and rising-fast lists, in JSON or as CSV/XLSX.

The chart itself draws from ``/api/command/series`` (country and provinces) and
``/api/command/reports?site_code=`` (a commune); role and province checks live
in the services.
"""

from __future__ import annotations

from enum import Enum

from fastapi import APIRouter, Query, Response

from diemcau.api.deps import RuntimeDep, StaffDep, visible_site
from diemcau.api.periods import RecentWindow, period_or_current
from diemcau.api.tables import Format, table_response
from diemcau.command.rankings import Level, Order

__all__ = ["router"]

router = APIRouter(prefix="/api/command")

_T: list[str | Enum] = ["command: charts (pages)"]


@router.get("/series-table", tags=_T, summary="An indicator's series: country, province or commune")
async def series_table(
    runtime: RuntimeDep,
    actor: StaffDep,
    w: RecentWindow,
    indicator: str = Query(..., max_length=48),
    site_code: str | None = Query(None, max_length=48),
    fmt: Format = Query("json", alias="format"),
) -> Response:
    svc = runtime.command
    if site_code is not None:
        site = await visible_site(runtime, actor, site_code)
        table = await svc.series.commune(actor, w.schema, indicator, w.first, w.last, site)
        name = f"{w.schema}-{indicator}-{site_code}"
    else:
        table = await svc.series.area(
            actor, w.schema, indicator, w.first, w.last, province_id=w.province_id
        )
        name = f"{w.schema}-{indicator}-{w.province_id or 'toan-quoc'}"
    return table_response(table, fmt, name)


@router.get("/rankings", tags=_T, summary="Top-N or rising-fast provinces or communes")
async def rankings(
    runtime: RuntimeDep,
    actor: StaffDep,
    schema: str = Query(..., max_length=48),
    indicator: str = Query(..., max_length=48),
    period: str | None = Query(None, description="default: the current period"),
    level: Level = Query("province"),
    order: Order = Query("value", description="value: the largest; rise: the fastest rising"),
    option: str | None = Query(None, max_length=48, description="a choice indicator's option"),
    n: int = Query(10, ge=1, le=500),
    fmt: Format = Query("json", alias="format"),
) -> Response:
    last = period_or_current(runtime, schema, period, "to")
    table = await runtime.command.rankings.table(
        actor, schema, indicator, last, level=level, order=order, option=option, n=n
    )
    return table_response(
        table,
        fmt,
        f"{schema}-{indicator}-{level}-{order}-{last.isoformat()}",
        period=last.isoformat(),
    )
