"""HTTP routes of the situation-reports page: reporting completeness by province and by
commune, the reporting rate over recent periods, and a report's revision history,
each in JSON for the page or as CSV/XLSX.

Role and province checks live in the services (`command.completeness`,
`command.history` and the report service behind them).
"""

from __future__ import annotations

from enum import Enum

from fastapi import APIRouter, Query, Response

from diemcau.api.deps import CallerDep, RuntimeDep, StaffDep
from diemcau.api.periods import period_or_current, periods_back
from diemcau.api.tables import Format, table_response
from diemcau.command.completeness import SiteState
from diemcau.command.history import revisions_table

__all__ = ["router"]

router = APIRouter(prefix="/api/command")

_T: list[str | Enum] = ["command: reporting completeness (pages)"]


@router.get("/completeness", tags=_T, summary="Expected, filed, late, missing per province")
async def completeness(
    runtime: RuntimeDep,
    actor: StaffDep,
    schema: str = Query(..., max_length=48),
    period: str | None = Query(None, description="YYYY-MM-DD; default: the current period"),
    fmt: Format = Query("json", alias="format"),
) -> Response:
    day = period_or_current(runtime, schema, period, "period")
    table, summary = await runtime.command.completeness.by_province(actor, schema, day)
    return table_response(
        table, fmt, f"{schema}-bao-cao-{day.isoformat()}", summary=summary.public()
    )


@router.get(
    "/completeness/sites", tags=_T, summary="Each expected site with its status and latest report"
)
async def completeness_sites(
    runtime: RuntimeDep,
    actor: StaffDep,
    schema: str = Query(..., max_length=48),
    period: str | None = Query(None),
    province_id: int | None = Query(None),
    state: SiteState = Query("missing"),
    limit: int = Query(5000, ge=1, le=20000),
    fmt: Format = Query("json", alias="format"),
) -> Response:
    day = period_or_current(runtime, schema, period, "period")
    table = await runtime.command.completeness.sites_table(
        actor, schema, day, province_id=province_id, state=state, limit=limit
    )
    return table_response(table, fmt, f"{schema}-{state}-{day.isoformat()}")


@router.get("/completeness/trend", tags=_T, summary="Reporting rate per province and period")
async def completeness_trend(
    runtime: RuntimeDep,
    actor: StaffDep,
    schema: str = Query(..., max_length=48),
    start: str | None = Query(None, alias="from"),
    end: str | None = Query(None, alias="to"),
    fmt: Format = Query("json", alias="format"),
) -> Response:
    first, last = periods_back(runtime, schema, start, end, 7)
    table = await runtime.command.completeness.trend(actor, schema, first, last)
    return table_response(table, fmt, f"{schema}-ty-le-bao-cao")


@router.get(
    "/reports/{report_id}/revisions", tags=_T, summary="A report's revision history as a table"
)
async def revisions(
    report_id: int,
    runtime: RuntimeDep,
    actor: CallerDep,
    fmt: Format = Query("json", alias="format"),
) -> Response:
    svc = runtime.command
    table, report = await revisions_table(svc.reports, actor, report_id)
    site = await runtime.sites.get(report.site_id)
    return table_response(
        table,
        fmt,
        f"bao-cao-{report_id}-lich-su",
        report=report.public(),
        site={"code": site.code, "name": site.name} if site else None,
    )
