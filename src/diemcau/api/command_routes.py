"""HTTP API of the command center: schemas, reports, aggregates, directives, alerts.

Handlers authenticate (the caller arrives as an `Actor`), parse and delegate to
one method of the services of `Runtime.command`; every role check
(a site reads and writes only its own reports, an officer only its province,
only staff issue directives) is made by the services, so the hub path and
this one cannot disagree.
"""

from __future__ import annotations

from datetime import date
from enum import Enum
from typing import Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import Field

from diemcau.actors import Actor
from diemcau.api.bodies import StrictBody
from diemcau.api.deps import CallerDep, RuntimeDep, SiteDep, StaffDep, visible_site
from diemcau.api.downloads import CSV_MEDIA_TYPE, attachment
from diemcau.api.periods import RecentWindow, period_or_current, period_or_none
from diemcau.command.center import CommandCenter
from diemcau.command.directives import DirectiveIn
from diemcau.command.exports import to_csv, to_xlsx
from diemcau.command.reports import parse_period
from diemcau.errors import Invalid
from diemcau.records import JsonObject
from diemcau.runtime import Runtime
from diemcau.spreadsheet import XLSX_MEDIA_TYPE

__all__ = ["router"]

router = APIRouter(prefix="/api/command")

_T_SCHEMA: list[str | Enum] = ["command: schemas"]
_T_REPORT: list[str | Enum] = ["command: reports"]
_T_AGG: list[str | Enum] = ["command: aggregates"]
_T_DIR: list[str | Enum] = ["command: directives"]
_T_SITE: list[str | Enum] = ["command (site)"]
_T_ALERT: list[str | Enum] = ["command: alerts"]

# Largest CSV accepted by the import (a province's communes fit many times over).
MAX_CSV_BYTES = 5 * 1024 * 1024


def _center(runtime: Runtime) -> CommandCenter:
    return runtime.command


def _period(value: str | None, name: str) -> date | None:
    return parse_period(value, name) if value else None


# --- schemas ---------------------------------------------------------------------------------


@router.get("/schemas", tags=_T_SCHEMA, summary="Indicator schemas (report forms)")
async def schemas(runtime: RuntimeDep, _who: CallerDep) -> list[JsonObject]:
    return [s.public() for s in _center(runtime).schemas.all()]


@router.get("/schemas/{key}", tags=_T_SCHEMA, summary="One indicator schema")
async def schema(key: str, runtime: RuntimeDep, _who: CallerDep) -> JsonObject:
    return _center(runtime).schemas.get(key).public()


# --- reports ---------------------------------------------------------------------------------


class ReportBody(StrictBody):
    """A report: a site files its own; staff name the site (``site_code``)."""

    schema_key: str = Field(alias="schema", min_length=1, max_length=48)
    period: date | None = Field(None, description="the period's first day; default: current")
    values: JsonObject
    note: str = Field("", max_length=2000)
    site_code: str | None = Field(None, max_length=48, description="staff only")


class CorrectionBody(StrictBody):
    values: JsonObject = Field(description="the indicators to change; null removes one")
    note: str = Field("", max_length=2000, description="why (kept in the history)")


async def _site_id(runtime: Runtime, actor: Actor, code: str) -> int:
    return (await visible_site(runtime, actor, code)).id


@router.post("/reports", tags=_T_REPORT, summary="File (or re-file) a report for a period")
async def file_report(body: ReportBody, runtime: RuntimeDep, actor: CallerDep) -> JsonObject:
    site_id: int | None = None
    if body.site_code is not None:
        site_id = await _site_id(runtime, actor, body.site_code)
    view = await _center(runtime).reports.submit(
        actor,
        body.schema_key,
        body.values,
        period=body.period,
        site_id=site_id,
        source="site" if actor.site_id is not None else "api",
        note=body.note,
    )
    return view.public()


@router.get("/reports", tags=_T_REPORT, summary="Reports in reach (a site: its own)")
async def list_reports(
    runtime: RuntimeDep,
    actor: CallerDep,
    schema: str = Query(..., max_length=48),
    start: str | None = Query(None, alias="from", description="first period YYYY-MM-DD"),
    end: str | None = Query(None, alias="to", description="last period YYYY-MM-DD"),
    site_code: str | None = Query(None, max_length=48),
    province_id: int | None = Query(None),
    limit: int = Query(500, ge=1, le=5000),
    offset: int = Query(0, ge=0),
) -> list[JsonObject]:
    site_id = await _site_id(runtime, actor, site_code) if site_code else None
    rows = await _center(runtime).reports.list_reports(
        actor,
        schema,
        start=period_or_none(runtime, schema, start, "from"),
        end=period_or_none(runtime, schema, end, "to"),
        site_id=site_id,
        province_id=province_id,
        limit=limit,
        offset=offset,
    )
    return [r.public() for r in rows]


@router.get("/reports/{report_id}", tags=_T_REPORT, summary="One report")
async def get_report(report_id: int, runtime: RuntimeDep, actor: CallerDep) -> JsonObject:
    return (await _center(runtime).reports.get(actor, report_id)).public()


@router.patch("/reports/{report_id}", tags=_T_REPORT, summary="Correct some values (history kept)")
async def correct_report(
    report_id: int,
    body: CorrectionBody,
    runtime: RuntimeDep,
    actor: CallerDep,
) -> JsonObject:
    view = await _center(runtime).reports.correct(
        actor,
        report_id,
        body.values,
        source="site" if actor.site_id is not None else "api",
        note=body.note,
    )
    return view.public()


@router.get("/reports/{report_id}/history", tags=_T_REPORT, summary="Every revision of a report")
async def report_history(report_id: int, runtime: RuntimeDep, actor: CallerDep) -> list[JsonObject]:
    return [r.public() for r in await _center(runtime).reports.history(actor, report_id)]


@router.post(
    "/reports/import",
    tags=_T_REPORT,
    summary="Import reports from CSV (text/csv body: site_code, [period], indicators)",
)
async def import_reports(
    request: Request,
    runtime: RuntimeDep,
    actor: StaffDep,
    schema: str = Query(..., max_length=48),
    period: str | None = Query(None, description="default period for lines without one"),
    note: str = Query("", max_length=2000),
) -> dict[str, int]:
    raw = bytearray()
    async for chunk in request.stream():  # stop reading past the limit, never buffer it all
        raw += chunk
        if len(raw) > MAX_CSV_BYTES:
            raise Invalid(f"csv: larger than {MAX_CSV_BYTES // (1024 * 1024)} MB", code="too_big")
    try:
        text = bytes(raw).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Invalid("csv: must be UTF-8 text", code="bad_csv") from None
    result = await _center(runtime).reports.import_csv(
        actor, schema, text, period=_period(period, "period"), note=note
    )
    return result.public()


@router.get("/status", tags=_T_REPORT, summary="Who has filed for a period: late and missing")
async def filing_status(
    runtime: RuntimeDep,
    actor: StaffDep,
    schema: str = Query(..., max_length=48),
    period: str | None = Query(None, description="default: the current period"),
    province_id: int | None = Query(None),
    limit: int = Query(500, ge=0, le=20000, description="most missing/late sites listed"),
) -> JsonObject:
    the_period = period_or_current(runtime, schema, period, "period")
    status = await _center(runtime).reports.filing_status(
        actor, schema, the_period, province_id=province_id, list_limit=limit
    )
    return status.public()


# --- aggregates ------------------------------------------------------------------------------


@router.get("/aggregate", tags=_T_AGG, summary="Totals by province and nation, per period")
async def aggregate(runtime: RuntimeDep, actor: StaffDep, w: RecentWindow) -> JsonObject:
    return dict(
        await _center(runtime).aggregator.aggregate_public(
            actor, w.schema, w.first, w.last, province_id=w.province_id
        )
    )


@router.get(
    "/series", tags=_T_AGG, summary="One indicator's time series, national and per province"
)
async def series(
    runtime: RuntimeDep,
    actor: StaffDep,
    w: RecentWindow,
    indicator: str = Query(..., max_length=48),
) -> JsonObject:
    return dict(
        await _center(runtime).aggregator.series(
            actor, w.schema, indicator, w.first, w.last, province_id=w.province_id
        )
    )


@router.get("/map", tags=_T_AGG, summary="Per-site values of one indicator for one period")
async def map_values(
    runtime: RuntimeDep,
    actor: StaffDep,
    schema: str = Query(..., max_length=48),
    indicator: str = Query(..., max_length=48),
    period: str | None = Query(None, description="default: the current period"),
    province_id: int | None = Query(None),
) -> JsonObject:
    day = period_or_current(runtime, schema, period, "period")
    return dict(
        await _center(runtime).aggregator.map_values(
            actor, schema, indicator, day, province_id=province_id
        )
    )


@router.get("/export", tags=_T_AGG, summary="Aggregates or raw reports as CSV or XLSX")
async def export(
    runtime: RuntimeDep,
    actor: StaffDep,
    w: RecentWindow,
    what: Literal["aggregate", "reports"] = Query("aggregate"),
    fmt: Literal["csv", "xlsx"] = Query("csv", alias="format"),
) -> Response:
    table = await _center(runtime).exports.table(
        actor, w.schema, w.first, w.last, what=what, province_id=w.province_id
    )
    name = f"{w.schema}-{what}-{w.first.isoformat()}-{w.last.isoformat()}"
    if fmt == "xlsx":
        return attachment(to_xlsx(table, f"{w.schema} {what}"), XLSX_MEDIA_TYPE, f"{name}.xlsx")
    return attachment(to_csv(table), CSV_MEDIA_TYPE, f"{name}.csv")


# --- directives ------------------------------------------------------------------------------


class RemindBody(StrictBody):
    include_unfinished: bool = Field(
        False, description="also remind sites that acknowledged but have not completed"
    )


class EscalateBody(StrictBody):
    province_id: int | None = Field(None, description="only this province (default: all lagging)")


class CompleteBody(StrictBody):
    note: str = Field("", max_length=4000)


@router.post("/directives", tags=_T_DIR, summary="Issue a directive to sites by area or list")
async def issue_directive(body: DirectiveIn, runtime: RuntimeDep, actor: StaffDep) -> JsonObject:
    view = await _center(runtime).directives.issue_directive(actor, body)
    return view.public()


@router.get("/directives", tags=_T_DIR, summary="Directives, newest first, with rates")
async def list_directives(
    runtime: RuntimeDep,
    actor: StaffDep,
    open_only: bool = Query(False),
    limit: int = Query(100, ge=1, le=500),
    before_id: int | None = Query(None),
) -> list[JsonObject]:
    views = await _center(runtime).directives.list_directives(
        actor, open_only=open_only, limit=limit, before_id=before_id
    )
    return [v.public() for v in views]


@router.get("/directives/overdue", tags=_T_DIR, summary="Directives past deadline, not completed")
async def overdue_directives(runtime: RuntimeDep, actor: StaffDep) -> list[JsonObject]:
    return [v.public() for v in await _center(runtime).directives.overdue(actor)]


@router.get(
    "/directives/{directive_id}", tags=_T_DIR, summary="A directive with rates per province"
)
async def get_directive(directive_id: int, runtime: RuntimeDep, actor: StaffDep) -> JsonObject:
    return (await _center(runtime).directives.detail(actor, directive_id)).public()


@router.get("/directives/{directive_id}/recipients", tags=_T_DIR, summary="Receiving sites")
async def directive_recipients(
    directive_id: int,
    runtime: RuntimeDep,
    actor: StaffDep,
    state: Literal[
        "all", "unacknowledged", "acknowledged", "incomplete", "completed", "overdue"
    ] = Query("all"),
    province_id: int | None = Query(None),
    limit: int = Query(1000, ge=1, le=20000),
    offset: int = Query(0, ge=0),
) -> list[JsonObject]:
    rows = await _center(runtime).directives.recipients(
        actor,
        directive_id,
        state=state,
        province_id=province_id,
        limit=limit,
        offset=offset,
    )
    return [r.as_dict() for r in rows]


@router.post("/directives/{directive_id}/remind", tags=_T_DIR, summary="Re-send to laggards")
async def remind(
    directive_id: int,
    runtime: RuntimeDep,
    actor: StaffDep,
    body: RemindBody | None = None,
) -> dict[str, int]:
    n = await _center(runtime).directives.remind(
        actor, directive_id, include_unfinished=bool(body and body.include_unfinished)
    )
    return {"reminded": n}


@router.post(
    "/directives/{directive_id}/escalate", tags=_T_DIR, summary="Alert lagging provinces' officers"
)
async def escalate(
    directive_id: int,
    runtime: RuntimeDep,
    actor: StaffDep,
    body: EscalateBody | None = None,
) -> JsonObject:
    lagging = await _center(runtime).directives.escalate(
        actor, directive_id, province_id=body.province_id if body else None
    )
    return {"escalated": [p.public() for p in lagging]}


@router.get("/inbox", tags=_T_SITE, summary="This site's directives with its own state")
async def inbox(
    runtime: RuntimeDep,
    actor: SiteDep,
    include_done: bool = Query(True),
) -> list[JsonObject]:
    return await _center(runtime).directives.inbox(actor, include_done=include_done)


@router.post("/directives/{directive_id}/ack", tags=_T_SITE, summary="Acknowledge a directive")
async def acknowledge(directive_id: int, runtime: RuntimeDep, actor: SiteDep) -> JsonObject:
    return await _center(runtime).directives.acknowledge(actor, directive_id)


@router.post(
    "/directives/{directive_id}/complete", tags=_T_SITE, summary="Report completion with a note"
)
async def complete(
    directive_id: int,
    body: CompleteBody,
    runtime: RuntimeDep,
    actor: SiteDep,
) -> JsonObject:
    return await _center(runtime).directives.complete(actor, directive_id, body.note)


# --- alerts ----------------------------------------------------------------------------------


@router.get("/alerts", tags=_T_ALERT, summary="The alerts feed, newest first")
async def alerts_feed(
    runtime: RuntimeDep,
    actor: StaffDep,
    active: bool | None = Query(True, description="true: active, false: cleared, empty: all"),
    kind: list[str] = Query([], description="only these kinds"),
    province_id: int | None = Query(None),
    unacknowledged: bool = Query(False),
    limit: int = Query(200, ge=1, le=1000),
    before_id: int | None = Query(None),
) -> list[JsonObject]:
    views = await _center(runtime).alerts.feed(
        actor,
        active=active,
        kinds=kind,
        province_id=province_id,
        unacknowledged=unacknowledged,
        limit=limit,
        before_id=before_id,
    )
    return [v.public() for v in views]


class AckBody(StrictBody):
    note: str = Field("", max_length=2000, description="what was done (kept with the alert)")


@router.post("/alerts/{alert_id}/ack", tags=_T_ALERT, summary="Acknowledge an alert, with a note")
async def acknowledge_alert(
    alert_id: int,
    runtime: RuntimeDep,
    actor: StaffDep,
    body: AckBody | None = None,
) -> JsonObject:
    note = body.note if body else ""
    return (await _center(runtime).alerts.acknowledge(actor, alert_id, note)).public()
