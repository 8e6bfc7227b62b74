"""HTTP routes of recording: policy, files, timeline, minutes, disk usage (docs/recording.md).

Who may do what is the recording service's decision (``recording.access``); these
routes only turn the caller's credential into an `Actor` and the service's
answers into HTTP. Files are served only after their SHA-256 is checked.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Response
from fastapi.responses import FileResponse
from pydantic import Field

from diemcau.actors import Actor
from diemcau.api.bodies import StrictBody
from diemcau.api.deps import RuntimeDep, SiteDep, StaffDep
from diemcau.errors import Invalid
from diemcau.recording.minutes import TEXT_FIELDS
from diemcau.recording.policy import MAX_RETENTION_DAYS, PolicyChange
from diemcau.recording.render import minutes_html, minutes_pdf
from diemcau.recording.service import RecordingService, Served
from diemcau.recording.timeline import KINDS
from diemcau.records import JsonObject
from diemcau.runtime import Runtime

__all__ = ["router"]

router = APIRouter(tags=["recording"])


def _service(runtime: Runtime) -> RecordingService:
    return runtime.recording


class PolicyBody(StrictBody):
    """Fields to change; leave a field out to keep it."""

    record_program: bool | None = None
    record_inspections: bool | None = None
    retention_days: int | None = Field(default=None, ge=1, le=MAX_RETENTION_DAYS)
    clear_retention: bool = False


class MinutesBody(StrictBody):
    """The written parts of the minutes and the draft version they were edited from."""

    texts: dict[str, str] = Field(description=f"parts: {', '.join(TEXT_FIELDS)}")
    version: int = Field(ge=0)


def _file_response(served: Served, download: bool) -> FileResponse:
    return FileResponse(
        served.path,
        media_type=served.file.content_type,
        filename=served.file.name,
        content_disposition_type="attachment" if download else "inline",
        headers={"X-Content-SHA256": served.file.sha256, "Cache-Control": "private, no-store"},
    )


@router.get("/api/meetings/{meeting_id}/recording", summary="A meeting's recording: policy, files")
async def recording(meeting_id: int, runtime: RuntimeDep, actor: StaffDep) -> JsonObject:
    svc = _service(runtime)
    policy = await svc.policy(actor, meeting_id)
    files = await svc.list_files(actor, meeting_id)
    return {
        "policy": policy.as_dict(),
        "files": [f.as_dict() for f in files],
        "may_manage": await svc.manages(actor, meeting_id),
    }


@router.put("/api/meetings/{meeting_id}/recording/policy", summary="Change the recording policy")
async def set_policy(
    meeting_id: int,
    body: PolicyBody,
    runtime: RuntimeDep,
    actor: StaffDep,
) -> JsonObject:
    change = PolicyChange(
        body.record_program, body.record_inspections, body.retention_days, body.clear_retention
    )
    policy = await _service(runtime).set_policy(actor, meeting_id, change)
    return policy.as_dict()


@router.get("/api/recordings/storage", summary="Disk usage of the recordings")
async def storage(runtime: RuntimeDep, actor: StaffDep) -> JsonObject:
    return (await _service(runtime).storage(actor)).as_dict()


@router.get("/api/recordings/{file_id}", summary="Watch or download a recording file")
async def fetch_file(
    file_id: int,
    runtime: RuntimeDep,
    actor: StaffDep,
    download: bool = False,
) -> FileResponse:
    return _file_response(await _service(runtime).open_file(actor, file_id), download)


@router.post("/api/recordings/{file_id}/ticket", summary="A watch URL for a <video> element")
async def watch_ticket(file_id: int, runtime: RuntimeDep, actor: StaffDep) -> JsonObject:
    ticket, expires = await _service(runtime).watch_ticket(actor, file_id)
    return {"url": f"/api/recordings/{file_id}/watch?ticket={ticket}", "expires_at": expires}


@router.get(
    "/api/recordings/{file_id}/watch",
    summary="Play a recording with a watch ticket (byte ranges for seeking)",
)
async def watch(
    file_id: int,
    runtime: RuntimeDep,
    ticket: str = Query(min_length=10, max_length=2000),
) -> FileResponse:
    return _file_response(await _service(runtime).open_with_ticket(file_id, ticket), False)


@router.delete("/api/recordings/{file_id}", summary="Delete a file before its time (admin)")
async def delete_file(
    file_id: int,
    runtime: RuntimeDep,
    actor: StaffDep,
    reason: str = Query(min_length=3, max_length=300),
) -> JsonObject:
    return (await _service(runtime).delete_file(actor, file_id, reason)).as_dict()


@router.get("/api/meetings/{meeting_id}/timeline", summary="Everything that happened, in order")
async def timeline(
    meeting_id: int,
    runtime: RuntimeDep,
    actor: StaffDep,
    kinds: str = Query(default="", description=f"comma list of: {', '.join(KINDS)}"),
    limit: int = Query(default=1000, ge=1, le=5000),
    offset: int = Query(default=0, ge=0),
) -> JsonObject:
    wanted = [k.strip() for k in kinds.split(",") if k.strip()]
    unknown = sorted(set(wanted) - set(KINDS))
    if unknown:
        raise Invalid(f"unknown event kind(s): {', '.join(unknown)}", code="bad_kind")
    result = await _service(runtime).records.timeline(
        actor, meeting_id, kinds=wanted or None, limit=limit, offset=offset
    )
    return result.as_dict()


@router.get("/api/meetings/{meeting_id}/minutes", summary="The minutes: draft or published")
async def minutes(meeting_id: int, runtime: RuntimeDep, actor: StaffDep) -> JsonObject:
    return await _service(runtime).records.minutes(actor, meeting_id)


@router.put("/api/meetings/{meeting_id}/minutes", summary="Edit the draft's written parts")
async def edit_minutes(
    meeting_id: int,
    body: MinutesBody,
    runtime: RuntimeDep,
    actor: StaffDep,
) -> JsonObject:
    state = await _service(runtime).records.edit_minutes(
        actor, meeting_id, body.texts, body.version
    )
    return state.as_dict()


@router.post("/api/meetings/{meeting_id}/minutes/publish", summary="Publish to every site")
async def publish_minutes(meeting_id: int, runtime: RuntimeDep, actor: StaffDep) -> JsonObject:
    return (await _service(runtime).records.publish_minutes(actor, meeting_id)).as_dict()


async def _staff_minutes(runtime: Runtime, actor: Actor, meeting_id: int, fmt: str) -> Response:
    svc = _service(runtime)
    state = await svc.minutes_book.get(meeting_id)
    if state.published:
        return _file_response(await svc.records.published_minutes(actor, meeting_id, fmt), False)
    content = await svc.records.draft_document(actor, meeting_id)
    if fmt == "pdf":
        return Response(minutes_pdf(content, draft=True), media_type="application/pdf")
    return Response(minutes_html(content, draft=True), media_type="text/html; charset=utf-8")


@router.get("/api/meetings/{meeting_id}/minutes.pdf", summary="The minutes as PDF")
async def minutes_pdf_route(meeting_id: int, runtime: RuntimeDep, actor: StaffDep) -> Response:
    return await _staff_minutes(runtime, actor, meeting_id, "pdf")


@router.get("/api/meetings/{meeting_id}/minutes.html", summary="The minutes as HTML")
async def minutes_html_route(meeting_id: int, runtime: RuntimeDep, actor: StaffDep) -> Response:
    return await _staff_minutes(runtime, actor, meeting_id, "html")


@router.get(
    "/api/site/meetings/{meeting_id}/minutes.pdf",
    tags=["recording (site)"],
    summary="The published minutes, for a site that took part",
)
async def site_minutes_pdf(meeting_id: int, runtime: RuntimeDep, site: SiteDep) -> FileResponse:
    served = await _service(runtime).records.published_minutes(site, meeting_id, "pdf")
    return _file_response(served, False)


@router.get(
    "/api/site/meetings/{meeting_id}/minutes.html",
    tags=["recording (site)"],
    summary="The published minutes as HTML, for a site that took part",
)
async def site_minutes_html(meeting_id: int, runtime: RuntimeDep, site: SiteDep) -> FileResponse:
    served = await _service(runtime).records.published_minutes(site, meeting_id, "html")
    return _file_response(served, False)
