"""The meeting lifecycle works the same on PostgreSQL as on SQLite; the public surface.

The audit log itself (append-only, queryable, exportable) is tested in test_audit.py.
"""

from __future__ import annotations

import pytest

from diemcau.meetings import InviteSpec, MeetingService
from diemcau.store import Database
from tests.test_meetings_support import FakeClock, FakeHub, build_world


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
        ]
    )
    assert all(hasattr(meetings, name) for name in meetings.__all__)
