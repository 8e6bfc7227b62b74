"""HTTP API of meetings: lifecycle, invitations, floor, roll call, conclusions, audit, groups.

Handlers authenticate, validate, turn the principal into an `Actor`, call one method
of a meetings peer and shape the reply; role checks that depend on the meeting (its
chair and delegates) live in the service. A province officer sees only its province's
attendance and acknowledgements; a site acts only for itself (its identity comes from
its token, never from the request body).
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from diemcau.actors import Actor
from diemcau.api.deps import RuntimeDep, SiteDep, StaffDep, staff_actor
from diemcau.api.downloads import CSV_MEDIA_TYPE, attachment
from diemcau.api.meetings_bodies import (
    ConclusionBody,
    Extend,
    Grant,
    GroupBody,
    GroupPatch,
    InviteBody,
    MeetingCreate,
    MeetingPatch,
    Revoke,
)
from diemcau.audit import AuditQuery, audit_csv, query_audit
from diemcau.errors import NotFound
from diemcau.meetings.invites import InviteSpec
from diemcau.meetings.service import MeetingService
from diemcau.records import JsonObject
from diemcau.runtime import Runtime

__all__ = ["router"]

router = APIRouter()

_Creators = Annotated[Actor, Depends(staff_actor("admin", "chair", "operator"))]
_Auditors = Annotated[Actor, Depends(staff_actor("admin", "chair", "operator"))]

_M: list[str | Enum] = ["meetings"]
_S: list[str | Enum] = ["meetings (site)"]


def _svc(runtime: Runtime) -> MeetingService:
    return runtime.meetings


async def _spec(runtime: Runtime, body: InviteBody) -> InviteSpec:
    """The invitation as the service stores it: ids, each code checked to exist."""
    return await _svc(runtime).invitations.spec_from_codes(
        everyone=body.everyone,
        units=body.units,
        sites=body.sites,
        groups=body.groups,
        kinds=body.kinds,
        exclude_sites=body.exclude_sites,
    )


# --- meetings (staff) ------------------------------------------------------------------------


@router.get("/api/meetings", tags=_M, summary="Meetings, newest first")
async def list_meetings(
    runtime: RuntimeDep,
    _who: StaffDep,
    state: str | None = Query(None, pattern="^(scheduled|live|ended)$"),
) -> list[JsonObject]:
    return [m.as_dict() for m in await _svc(runtime).store.list_meetings(state)]


@router.post("/api/meetings", tags=_M, status_code=201, summary="Schedule a meeting")
async def create_meeting(body: MeetingCreate, runtime: RuntimeDep, who: _Creators) -> JsonObject:
    spec = await _spec(runtime, body.invite)
    view = await _svc(runtime).lifecycle.create_meeting(
        who,
        title=body.title,
        agenda=body.agenda,
        invite=spec,
        chair_user_id=body.chair_user_id,
        delegates=body.delegates,
        scheduled_start=body.scheduled_start,
        scheduled_end=body.scheduled_end,
        reminder_lead_s=body.reminder_lead_s,
        late_after_s=body.late_after_s,
    )
    return view.as_dict()


@router.post(
    "/api/meetings/invites/preview", tags=_M, summary="How many sites an invitation reaches"
)
async def preview_invites(body: InviteBody, runtime: RuntimeDep, _who: _Creators) -> JsonObject:
    ids = await _svc(runtime).invitations.resolve(await _spec(runtime, body))
    return {"count": len(ids)}


@router.get("/api/meetings/{meeting_id}", tags=_M, summary="One meeting")
async def get_meeting(meeting_id: int, runtime: RuntimeDep, _who: StaffDep) -> JsonObject:
    return (await _svc(runtime).store.get_meeting(meeting_id)).as_dict()


@router.patch("/api/meetings/{meeting_id}", tags=_M, summary="Edit title, agenda, schedule")
async def patch_meeting(
    meeting_id: int,
    body: MeetingPatch,
    runtime: RuntimeDep,
    who: StaffDep,
) -> JsonObject:
    view = await _svc(runtime).lifecycle.update_meeting(
        who,
        meeting_id,
        title=body.title,
        agenda=body.agenda,
        scheduled_start=body.scheduled_start,
        scheduled_end=body.scheduled_end,
        delegates=body.delegates,
    )
    return view.as_dict()


@router.put("/api/meetings/{meeting_id}/invites", tags=_M, summary="Change who is invited")
async def put_invites(
    meeting_id: int,
    body: InviteBody,
    runtime: RuntimeDep,
    who: StaffDep,
) -> JsonObject:
    spec = await _spec(runtime, body)
    return (await _svc(runtime).roster.set_invites(who, meeting_id, spec)).as_dict()


@router.post("/api/meetings/{meeting_id}/start", tags=_M, summary="Go live and notify sites")
async def start_meeting(meeting_id: int, runtime: RuntimeDep, who: StaffDep) -> JsonObject:
    return (await _svc(runtime).lifecycle.start_meeting(who, meeting_id)).as_dict()


@router.post("/api/meetings/{meeting_id}/end", tags=_M, summary="End a live meeting")
async def end_meeting(meeting_id: int, runtime: RuntimeDep, who: StaffDep) -> JsonObject:
    return (await _svc(runtime).lifecycle.end_meeting(who, meeting_id)).as_dict()


@router.post("/api/meetings/{meeting_id}/extend", tags=_M, summary="Move the planned end later")
async def extend_meeting(
    meeting_id: int,
    body: Extend,
    runtime: RuntimeDep,
    who: StaffDep,
) -> JsonObject:
    view = await _svc(runtime).lifecycle.extend_meeting(who, meeting_id, body.minutes)
    return view.as_dict()


# --- floor (staff) ---------------------------------------------------------------------------


@router.get("/api/meetings/{meeting_id}/floor", tags=_M, summary="Speakers and mute flags")
async def floor_state(meeting_id: int, runtime: RuntimeDep, _w: StaffDep) -> JsonObject:
    return (await _svc(runtime).floor.state(meeting_id)).as_dict()


@router.get("/api/meetings/{meeting_id}/queue", tags=_M, summary="Raised hands, oldest first")
async def queue(meeting_id: int, runtime: RuntimeDep, _w: StaffDep) -> list[JsonObject]:
    return [q.as_dict() for q in await _svc(runtime).hands.queue(meeting_id)]


@router.post("/api/meetings/{meeting_id}/floor/grant", tags=_M, summary="Give the floor")
async def grant(meeting_id: int, body: Grant, runtime: RuntimeDep, who: StaffDep) -> JsonObject:
    decision = await _svc(runtime).floor.grant(
        who, meeting_id, body.site_ids, codes=body.site_codes, add=body.add
    )
    return decision.as_dict()


@router.post("/api/meetings/{meeting_id}/floor/revoke", tags=_M, summary="Take the floor back")
async def revoke(meeting_id: int, body: Revoke, runtime: RuntimeDep, who: StaffDep) -> JsonObject:
    return (await _svc(runtime).floor.revoke(who, meeting_id, body.site_id)).as_dict()


@router.post("/api/meetings/{meeting_id}/floor/next", tags=_M, summary="Next in the queue")
async def next_in_queue(meeting_id: int, runtime: RuntimeDep, who: StaffDep) -> JsonObject:
    return (await _svc(runtime).floor.next(who, meeting_id)).as_dict()


@router.post("/api/meetings/{meeting_id}/floor/mute-all", tags=_M, summary="Mute every site")
async def mute_all(meeting_id: int, runtime: RuntimeDep, who: StaffDep) -> JsonObject:
    return (await _svc(runtime).floor.mute_all(who, meeting_id)).as_dict()


@router.post("/api/meetings/{meeting_id}/floor/allow-unmute", tags=_M, summary="Allow unmuting")
async def allow_unmute(meeting_id: int, runtime: RuntimeDep, who: StaffDep) -> JsonObject:
    return (await _svc(runtime).floor.allow_unmute(who, meeting_id)).as_dict()


# --- roll call (staff) -----------------------------------------------------------------------


@router.get("/api/meetings/{meeting_id}/attendance", tags=_M, summary="Live counts per province")
async def attendance(meeting_id: int, runtime: RuntimeDep, who: StaffDep) -> JsonObject:
    summary = await _svc(runtime).roll_call.summary(meeting_id, who.scope())
    return summary.as_dict()


@router.get("/api/meetings/{meeting_id}/attendance/sites", tags=_M, summary="Per-site attendance")
async def attendance_sites(meeting_id: int, runtime: RuntimeDep, who: StaffDep) -> list[JsonObject]:
    _, _, sites = await _svc(runtime).roll_call.sites(meeting_id, who.scope())
    return [a.as_dict() for a in sites]


@router.get(
    "/api/meetings/{meeting_id}/attendance/report.csv",
    tags=_M,
    summary="Attendance report as CSV",
    response_class=Response,
)
async def attendance_csv(
    meeting_id: int,
    runtime: RuntimeDep,
    who: StaffDep,
    utc_offset_min: int = Query(420, ge=-720, le=840, description="time zone of the times shown"),
) -> Response:
    text = await _svc(runtime).roll_call.report_csv(
        meeting_id, who.scope(), utc_offset_min=utc_offset_min
    )
    # a BOM so spreadsheet programs read the Vietnamese text as UTF-8
    return attachment("\ufeff" + text, CSV_MEDIA_TYPE, f"diem-danh-{meeting_id}.csv")


@router.get(
    "/api/meetings/{meeting_id}/attendance/report.html",
    tags=_M,
    summary="Print-ready attendance report",
    response_class=Response,
)
async def attendance_html(
    meeting_id: int,
    runtime: RuntimeDep,
    who: StaffDep,
    utc_offset_min: int = Query(420, ge=-720, le=840),
) -> Response:
    text = await _svc(runtime).roll_call.report_html(
        meeting_id, who.scope(), utc_offset_min=utc_offset_min
    )
    return Response(text, media_type="text/html; charset=utf-8")


# --- conclusions (staff) ---------------------------------------------------------------------


@router.post("/api/meetings/{meeting_id}/conclusions", tags=_M, status_code=201, summary="Publish")
async def publish_conclusion(
    meeting_id: int,
    body: ConclusionBody,
    runtime: RuntimeDep,
    who: StaffDep,
) -> JsonObject:
    view = await _svc(runtime).conclusions.publish(who, meeting_id, body.body, body.attachments)
    return view.as_dict()


@router.get("/api/meetings/{meeting_id}/conclusions", tags=_M, summary="Published conclusions")
async def list_conclusions(meeting_id: int, runtime: RuntimeDep, _w: StaffDep) -> list[JsonObject]:
    return [c.as_dict() for c in await _svc(runtime).conclusions.list_for_meeting(meeting_id)]


@router.get(
    "/api/conclusions/{conclusion_id}/status", tags=_M, summary="Who has and has not acknowledged"
)
async def conclusion_status(conclusion_id: int, runtime: RuntimeDep, who: StaffDep) -> JsonObject:
    status = await _svc(runtime).conclusions.status(conclusion_id, who.scope())
    return status.as_dict()


# --- audit (staff) ---------------------------------------------------------------------------


def _audit_query(
    meeting_id: int | None = Query(None),
    action: str | None = Query(None, max_length=64),
    actor: str | None = Query(None, max_length=200),
    since: datetime | None = Query(None),
    until: datetime | None = Query(None),
    limit: int = Query(200, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> AuditQuery:
    return AuditQuery(meeting_id, action, actor, since, until, limit, offset)


@router.get("/api/audit", tags=["audit"], summary="The audit log (read-only), oldest first")
async def audit(
    runtime: RuntimeDep,
    _w: _Auditors,
    q: AuditQuery = Depends(_audit_query),
) -> JsonObject:
    total, rows = await query_audit(runtime.db, q)
    return {"total": total, "items": [r.as_dict() for r in rows]}


@router.get(
    "/api/audit/export.csv", tags=["audit"], summary="Audit log as CSV", response_class=Response
)
async def audit_export(
    runtime: RuntimeDep,
    _w: _Auditors,
    q: AuditQuery = Depends(_audit_query),
) -> Response:
    text = await audit_csv(runtime.db, q)
    return attachment("\ufeff" + text, CSV_MEDIA_TYPE, "nhat-ky.csv")


# --- saved site groups (staff) ---------------------------------------------------------------


@router.get("/api/site-groups", tags=["site groups"], summary="Saved site groups")
async def list_groups(runtime: RuntimeDep, _w: StaffDep) -> list[JsonObject]:
    return [g.as_dict() for g in await _svc(runtime).groups.list_groups()]


@router.post("/api/site-groups", tags=["site groups"], status_code=201, summary="Save a group")
async def create_group(body: GroupBody, runtime: RuntimeDep, who: _Creators) -> JsonObject:
    spec = await _spec(runtime, body.invite)
    group = await _svc(runtime).groups.create(who, body.name, spec, description=body.description)
    return group.as_dict()


@router.patch("/api/site-groups/{group_id}", tags=["site groups"], summary="Edit a group")
async def patch_group(
    group_id: int,
    body: GroupPatch,
    runtime: RuntimeDep,
    who: _Creators,
) -> JsonObject:
    spec = await _spec(runtime, body.invite) if body.invite is not None else None
    group = await _svc(runtime).groups.update(
        who, group_id, name=body.name, spec=spec, description=body.description
    )
    return group.as_dict()


@router.delete(
    "/api/site-groups/{group_id}", tags=["site groups"], status_code=204, response_class=Response
)
async def delete_group(group_id: int, runtime: RuntimeDep, who: _Creators) -> Response:
    await _svc(runtime).groups.delete(who, group_id)
    return Response(status_code=204)


# --- sites -----------------------------------------------------------------------------------


@router.get("/api/site/meetings/current", tags=_S, summary="The live meeting this site is in")
async def site_current(runtime: RuntimeDep, site: SiteDep) -> JsonObject:
    try:
        current = await _svc(runtime).site_actions.current(site)
    except NotFound as exc:
        if exc.code != "no_live_meeting":
            raise
        # No meeting is the normal state of a site between meetings, not an error: a
        # 404 here made every idle site terminal log one in the browser console.
        return {"meeting": None, "floor": None, "present": False, "conclusions": []}
    return current.as_dict()


@router.post("/api/site/meetings/{meeting_id}/join", tags=_S, summary="Join (invited sites only)")
async def site_join(meeting_id: int, runtime: RuntimeDep, site: SiteDep) -> JsonObject:
    view = await _svc(runtime).site_actions.join(site, meeting_id)
    return {"meeting": view.site_dict(), "present": True}


@router.post("/api/site/meetings/{meeting_id}/leave", tags=_S, summary="Leave the meeting")
async def site_leave(meeting_id: int, runtime: RuntimeDep, site: SiteDep) -> JsonObject:
    await _svc(runtime).site_actions.leave(site, meeting_id)
    return {"present": False}


@router.post("/api/site/meetings/{meeting_id}/hand", tags=_S, summary="Raise this site's hand")
async def site_raise(meeting_id: int, runtime: RuntimeDep, site: SiteDep) -> JsonObject:
    entry = await _svc(runtime).site_actions.raise_hand(site, meeting_id)
    return {"raised": True, "position": entry.position}


@router.delete("/api/site/meetings/{meeting_id}/hand", tags=_S, summary="Lower this site's hand")
async def site_lower(meeting_id: int, runtime: RuntimeDep, site: SiteDep) -> JsonObject:
    await _svc(runtime).site_actions.lower_hand(site, meeting_id)
    return {"raised": False}


@router.post("/api/site/conclusions/{conclusion_id}/ack", tags=_S, summary="Acknowledge reading")
async def site_ack(conclusion_id: int, runtime: RuntimeDep, site: SiteDep) -> JsonObject:
    at = await _svc(runtime).conclusions.ack(site, conclusion_id)
    return {"conclusion_id": conclusion_id, "acked_at": at.isoformat()}
