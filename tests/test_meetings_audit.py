"""The audit log is append-only (API and database trigger), queryable and exportable;
and the meeting lifecycle works the same on PostgreSQL as on SQLite."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.expression import Executable

import diemcau.meetings.audit as audit_module
from diemcau.meetings import InviteSpec, MeetingService
from diemcau.meetings.audit import AuditQuery, audit_csv, query_audit, record_audit
from diemcau.meetings.models import AuditEntry
from diemcau.store import Database
from tests.test_meetings_support import FakeClock, FakeHub, build_world


async def test_audit_has_no_update_or_delete_path_in_its_api() -> None:
    public = set(audit_module.__all__)
    assert public == {"AuditQuery", "AuditRecord", "audit_csv", "query_audit", "record_audit"}
    assert not [n for n in dir(audit_module) if n.startswith(("update", "delete", "remove"))]


@pytest.mark.pg
async def test_database_refuses_update_and_delete_of_audit_rows(any_db: Database) -> None:
    w = await build_world(any_db)
    async with any_db.session() as s:
        await record_audit(s, w.staff["chair"], "floor.grant", 7, target="C1-S", details={"a": 1})
        await record_audit(s, "system", "meeting.remind", 7)
    # Bad input: an ORM update, an ORM delete, raw SQL update/delete of the log.
    attempts: list[Executable] = [
        update(AuditEntry).values(action="forged"),
        delete(AuditEntry),
        text("UPDATE audit_log SET actor_name = 'someone else'"),
        text("DELETE FROM audit_log"),
    ]
    for stmt in attempts:
        with pytest.raises(DBAPIError, match="append-only"):
            async with any_db.session() as s:
                await s.execute(stmt)
    with pytest.raises(DBAPIError, match="append-only"):
        async with any_db.session() as s:
            row = await s.scalar(select(AuditEntry).limit(1))
            assert row is not None
            await s.delete(row)
    total, rows = await query_audit(any_db, AuditQuery(meeting_id=7))
    assert total == 2
    assert [(r.actor_kind, r.actor_name, r.action) for r in rows] == [
        ("staff", "chair", "floor.grant"),
        ("system", "system", "meeting.remind"),
    ]
    assert rows[0].details == {"a": 1} and rows[0].target == "C1-S"
    text_csv = await audit_csv(any_db, AuditQuery(action="floor.grant"))
    parsed = list(csv.reader(io.StringIO(text_csv)))
    assert parsed[0][0] == "Mã / ID" and len(parsed) == 2 and parsed[1][4] == "floor.grant"


@pytest.mark.pg
async def test_lifecycle_floor_and_attendance_on_both_stores(any_db: Database) -> None:
    w = await build_world(any_db)
    hub = FakeHub()
    clock = FakeClock()
    svc = MeetingService(any_db, hub, clock=clock, reminder_poll_s=0)
    svc.register()
    await svc.start()
    chair = w.actor("chair")
    m = await svc.lifecycle.create_meeting(
        chair, title="PG", invite=InviteSpec(unit_ids=(w.units["P1"],))
    )
    await svc.lifecycle.start_meeting(chair, m.id)
    for code in ("C1-S", "C3-S"):
        await hub.set_online(w.sites[code].site_id, True)
        await hub.message(w.sites[code], "meeting.join", {})
        clock.advance(1)
        await hub.message(w.sites[code], "hand.raise", {})
    assert [q.code for q in await svc.hands.queue(m.id)] == ["C1-S", "C3-S"]
    d = await svc.floor.next(chair, m.id)
    assert d.speaker_codes == ["C1-S"]
    clock.advance(60)
    await hub.set_online(w.sites["C3-S"].site_id, False)
    s = await svc.roll_call.summary(m.id)
    assert (s.total.invited, s.total.present, s.total.left) == (5, 1, 1)
    await svc.lifecycle.end_meeting(chair, m.id)
    _, _, sites = await svc.roll_call.sites(m.id)
    by = {a.code: a for a in sites}
    assert by["C1-S"].presence_s == pytest.approx(62)
    assert by["C3-S"].presence_s == pytest.approx(61)  # joined at 1, dropped at 62
    await svc.stop()


def test_public_surface_is_pinned() -> None:
    import diemcau.meetings as meetings

    assert sorted(meetings.__all__) == sorted(
        [
            "Attachment",
            "AttendanceCounts",
            "AttendanceSummary",
            "AuditQuery",
            "AuditRecord",
            "ConclusionStatus",
            "ConclusionView",
            "FloorDecision",
            "FloorListener",
            "FloorState",
            "Invitations",
            "InviteSpec",
            "MAX_SPEAKERS",
            "MediaPort",
            "MeetingService",
            "MeetingView",
            "QueueEntry",
            "SiteAttendance",
            "SpeakerView",
            "audit_csv",
            "query_audit",
            "record_audit",
        ]
    )
    assert all(hasattr(meetings, name) for name in meetings.__all__)
