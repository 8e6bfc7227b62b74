"""Online inspection over HTTP: inspect a site, call it, rounds and their reports, the wall.

Every route takes the caller as an `Actor` and makes one call to the inspection service
(`Runtime.inspection`), which checks who may inspect whom: chair, operators and admins
any site, a province officer only its province's, a site never (docs/inspection.md).
A site's own route hands it its standby grant and who looks at it now.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import Field

from diemcau.api.bodies import StrictBody
from diemcau.api.deps import RuntimeDep, SiteDep, StaffDep
from diemcau.api.downloads import sheet_download
from diemcau.errors import Invalid
from diemcau.inspection.records import InspectionFilter
from diemcau.inspection.reports import DEFAULT_UTC_OFFSET_MIN, round_html, round_sheet
from diemcau.inspection.rounds import MAX_ROUND_SITES, MAX_SNAPSHOT_BYTES, Sample, Snapshot
from diemcau.inspection.service import InspectionService
from diemcau.inspection.sheets import inspections_sheet
from diemcau.inspection.summary import province_summary
from diemcau.inspection.wall import MAX_WALL_SITES
from diemcau.records import JsonObject
from diemcau.runtime import Runtime

__all__ = ["router"]

router = APIRouter(tags=["inspection"])

_Id = Annotated[int, Path(ge=1, le=2**31 - 1)]
_OFFSET = Query(DEFAULT_UTC_OFFSET_MIN, ge=-720, le=840, description="time zone, minutes")
Verdict = Literal["pass", "fail", "no_answer"]
State = Literal["waiting", "live", "ended", "not_answered"]


def _svc(runtime: Runtime) -> InspectionService:
    return runtime.inspection


class InspectBody(StrictBody):
    site_code: str = Field(min_length=1, max_length=48)
    round_item_id: int | None = Field(None, ge=1, le=2**31 - 1)


class WallBody(StrictBody):
    sites: list[Annotated[str, Field(min_length=1, max_length=48)]] = Field(
        min_length=1, max_length=MAX_WALL_SITES
    )
    wall_id: str | None = Field(None, min_length=1, max_length=32)


class SampleBody(StrictBody):
    n: int = Field(ge=1, le=MAX_ROUND_SITES)
    province: str | None = Field(None, min_length=1, max_length=16)
    communes_only: bool = True


class RoundBody(StrictBody):
    title: str = Field(min_length=1, max_length=300)
    sites: list[Annotated[str, Field(min_length=1, max_length=48)]] | None = Field(
        None, min_length=1, max_length=MAX_ROUND_SITES
    )
    sample: SampleBody | None = None


class VerdictBody(StrictBody):
    verdict: Verdict | None
    note: str = Field("", max_length=2000)


# --- inspections ---------------------------------------------------------------------


@router.post("/api/inspections", status_code=201, summary="Inspect a site now")
async def inspect(body: InspectBody, runtime: RuntimeDep, actor: StaffDep) -> JsonObject:
    """The site is told to publish; the answer holds the inspection and the grant to
    subscribe to its feed (no grant: the site has no terminal open, *not answered*)."""
    started = await _svc(runtime).inspect(actor, body.site_code, body.round_item_id)
    return started.as_dict()


def _filter(
    site_code: str | None = Query(None, max_length=48),
    inspector: str | None = Query(None, max_length=64),
    state: State | None = Query(None),
    round_id: int | None = Query(None, ge=1, le=2**31 - 1),
    province_id: int | None = Query(None, ge=1, le=2**31 - 1),
    since: datetime | None = Query(None),
    until: datetime | None = Query(None),
    limit: int = Query(200, ge=1, le=1000),
) -> InspectionFilter:
    return InspectionFilter(province_id, site_code, inspector, state, round_id, since, until, limit)


@router.get("/api/inspections", summary="Inspections, newest first (an officer: its province)")
async def list_inspections(
    runtime: RuntimeDep,
    actor: StaffDep,
    f: Annotated[InspectionFilter, Depends(_filter)],
) -> JsonObject:
    views = await _svc(runtime).list(actor, f)
    return {"items": [v.as_dict() for v in views]}


@router.get(
    "/api/inspections/export", summary="Inspections as CSV or XLSX", response_class=Response
)
async def export_inspections(
    runtime: RuntimeDep,
    actor: StaffDep,
    f: Annotated[InspectionFilter, Depends(_filter)],
    format: Literal["csv", "xlsx"] = Query("csv"),  # noqa: A002 - the query's name
    utc_offset_min: int = _OFFSET,
) -> Response:
    views = await _svc(runtime).list(actor, f)
    sheet = inspections_sheet(views, utc_offset_min=utc_offset_min)
    return sheet_download(sheet, format, "kiem-tra-truc-tuyen")


@router.get("/api/inspections/{inspection_id}", summary="One inspection")
async def get_inspection(inspection_id: _Id, runtime: RuntimeDep, actor: StaffDep) -> JsonObject:
    return (await _svc(runtime).get(actor, inspection_id)).as_dict()


@router.post(
    "/api/inspections/{inspection_id}/keepalive", summary="The console still watches (lease)"
)
async def keepalive(inspection_id: _Id, runtime: RuntimeDep, actor: StaffDep) -> JsonObject:
    """A fresh grant while the inspection is open (``grant`` null once it has ended)."""
    return (await _svc(runtime).keepalive(actor, inspection_id)).as_dict()


@router.post("/api/inspections/{inspection_id}/end", summary="End an inspection")
async def end(inspection_id: _Id, runtime: RuntimeDep, actor: StaffDep) -> JsonObject:
    return (await _svc(runtime).end(actor, inspection_id)).as_dict()


@router.post("/api/inspections/{inspection_id}/call", summary="Call the site (two-way)")
async def call(inspection_id: _Id, runtime: RuntimeDep, actor: StaffDep) -> JsonObject:
    """The grant to publish the inspector's camera and microphone to that one site."""
    return (await _svc(runtime).start_call(actor, inspection_id)).as_dict()


@router.post("/api/inspections/{inspection_id}/call/end", summary="Hang up")
async def end_call(inspection_id: _Id, runtime: RuntimeDep, actor: StaffDep) -> JsonObject:
    return (await _svc(runtime).end_call(actor, inspection_id)).as_dict()


# --- the video wall ------------------------------------------------------------------


@router.post("/api/inspection/wall", summary="Show (or keep showing) a page of the video wall")
async def wall(body: WallBody, runtime: RuntimeDep, actor: StaffDep) -> JsonObject:
    """Standby sites on the page publish while it is shown; ask again within
    ``lease_s`` with the ``wall_id`` to keep it, with other sites to page."""
    return (await _svc(runtime).open_wall(actor, body.sites, body.wall_id)).as_dict()


@router.delete("/api/inspection/wall/{wall_id}", status_code=204, summary="Leave a wall page")
async def leave_wall(
    wall_id: Annotated[str, Path(min_length=1, max_length=32)],
    runtime: RuntimeDep,
    actor: StaffDep,
) -> Response:
    await _svc(runtime).wall.release(actor, wall_id)
    return Response(status_code=204)


# --- figures by province -------------------------------------------------------------


@router.get("/api/inspection/summary", summary="Inspection figures by province (dashboard)")
async def summary(
    runtime: RuntimeDep,
    actor: StaffDep,
    days: int = Query(30, ge=1, le=366),
    province_id: int | None = Query(None, ge=1, le=2**31 - 1),
) -> JsonObject:
    until = datetime.fromtimestamp(runtime.clock(), UTC) + timedelta(seconds=1)
    since = until - timedelta(days=days)
    provinces, total = await province_summary(runtime.db, since, until, actor.scope(province_id))
    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "provinces": [p.as_dict() for p in provinces],
        "total": total.as_dict(),
    }


# --- rounds --------------------------------------------------------------------------


@router.post("/api/inspection/rounds", status_code=201, summary="Plan an inspection round")
async def create_round(body: RoundBody, runtime: RuntimeDep, actor: StaffDep) -> JsonObject:
    """A list of site codes, or a random sample of N communes of a province (its code)
    or of the country."""
    sample = None
    if body.sample is not None:
        sample = Sample(body.sample.n, body.sample.province, body.sample.communes_only)
    view = await _svc(runtime).rounds.create(
        actor, body.title, site_codes=body.sites, sample=sample
    )
    return view.as_dict()


@router.get("/api/inspection/rounds", summary="Inspection rounds, newest first")
async def list_rounds(
    runtime: RuntimeDep,
    actor: StaffDep,
    open_only: bool = Query(False, alias="open"),
    limit: int = Query(50, ge=1, le=500),
) -> JsonObject:
    views = await _svc(runtime).rounds.list(actor, include_closed=not open_only, limit=limit)
    return {"items": [v.as_dict(items=False) for v in views]}


@router.get("/api/inspection/rounds/{round_id}", summary="A round with its sites and verdicts")
async def get_round(round_id: _Id, runtime: RuntimeDep, actor: StaffDep) -> JsonObject:
    return (await _svc(runtime).rounds.get(actor, round_id)).as_dict()


@router.put(
    "/api/inspection/rounds/{round_id}/items/{item_id}", summary="A site's verdict and note"
)
async def decide(
    round_id: _Id,
    item_id: _Id,
    body: VerdictBody,
    runtime: RuntimeDep,
    actor: StaffDep,
) -> JsonObject:
    item = await _svc(runtime).rounds.decide(actor, round_id, item_id, body.verdict, body.note)
    return item.as_dict()


@router.put(
    "/api/inspection/rounds/{round_id}/items/{item_id}/snapshot",
    summary="Keep a frame of what was seen (raw JPEG or PNG body)",
)
async def put_snapshot(
    round_id: _Id,
    item_id: _Id,
    request: Request,
    runtime: RuntimeDep,
    actor: StaffDep,
) -> JsonObject:
    mime = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = bytearray()
    async for chunk in request.stream():  # stop past the limit, never buffer all of it
        raw += chunk
        if len(raw) > MAX_SNAPSHOT_BYTES:
            raise Invalid(f"a snapshot is at most {MAX_SNAPSHOT_BYTES} bytes", code="too_big")
    item = await _svc(runtime).rounds.put_snapshot(
        actor, round_id, item_id, Snapshot(mime, bytes(raw))
    )
    return item.as_dict()


@router.get(
    "/api/inspection/rounds/{round_id}/items/{item_id}/snapshot",
    summary="The frame kept for a site",
    response_class=Response,
)
async def get_snapshot(
    round_id: _Id,
    item_id: _Id,
    runtime: RuntimeDep,
    actor: StaffDep,
) -> Response:
    shot = await _svc(runtime).rounds.snapshot(actor, round_id, item_id)
    return Response(shot.data, media_type=shot.mime, headers={"Cache-Control": "private"})


@router.post("/api/inspection/rounds/{round_id}/close", summary="Close a round")
async def close_round(round_id: _Id, runtime: RuntimeDep, actor: StaffDep) -> JsonObject:
    return (await _svc(runtime).rounds.close(actor, round_id)).as_dict()


@router.get(
    "/api/inspection/rounds/{round_id}/report.html",
    summary="The round's printable report",
    response_class=Response,
)
async def round_report_html(
    round_id: _Id,
    runtime: RuntimeDep,
    actor: StaffDep,
    utc_offset_min: int = _OFFSET,
) -> Response:
    rounds = _svc(runtime).rounds
    view = await rounds.get(actor, round_id)
    text = round_html(view, await rounds.snapshots(actor, round_id), utc_offset_min=utc_offset_min)
    return Response(text, media_type="text/html; charset=utf-8")


@router.get(
    "/api/inspection/rounds/{round_id}/report.{fmt}",
    summary="The round's report as CSV or XLSX",
    response_class=Response,
)
async def round_report_sheet(
    round_id: _Id,
    fmt: Literal["csv", "xlsx"],
    runtime: RuntimeDep,
    actor: StaffDep,
    utc_offset_min: int = _OFFSET,
) -> Response:
    view = await _svc(runtime).rounds.get(actor, round_id)
    sheet = round_sheet(view, utc_offset_min=utc_offset_min)
    return sheet_download(sheet, fmt, f"dot-kiem-tra-{round_id}")


# --- the site's own ------------------------------------------------------------------


@router.get("/api/site/inspection", tags=["media"], summary="This site's standby grant")
async def site_inspection(runtime: RuntimeDep, site: SiteDep) -> JsonObject:
    """Where the site publishes when an inspector looks, the call room it plays an
    inspector's call from, and who looks at it now (``watch``)."""
    return await _svc(runtime).site_grant(site)
