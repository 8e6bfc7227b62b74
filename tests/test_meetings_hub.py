"""Meetings over the real presence hub, with raw WebSocket site clients.

Invited sites learn of the start on the meeting stream, join and raise hands over
their session, every site sees the floor decision, an uninvited site is refused, and a
dropped session closes the attendance interval and reopens it on reconnect.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from diemcau.actors import Actor
from diemcau.meetings import InviteSpec, MeetingService
from diemcau.presence.hub import PresenceHub
from diemcau.store import Database
from diemcau.store.models import StaffUser
from tests.presence_support import Directory, RawSite, eventually, fast_config, make_sites


@dataclass
class Live:
    hub: PresenceHub
    svc: MeetingService
    d: Directory
    chair: Actor


@pytest.fixture
async def live(db: Database) -> AsyncIterator[Live]:
    key = await db.secret_key()
    d = await make_sites(db, key, per_province=3, provinces=2)
    async with db.session() as s:
        user = StaffUser(username="chair", display_name="", password_hash="x", role="chair")
        s.add(user)
        await s.flush()
        chair = Actor.for_staff("chair", "chair", user_id=user.id)
    hub = PresenceHub(db, key, fast_config())
    svc = MeetingService(db, hub, reminder_poll_s=0)
    svc.register()
    await hub.start()
    await svc.start()
    yield Live(hub, svc, d, chair)
    await svc.stop()
    await hub.stop()


def _kinds(site: RawSite, stream: str) -> list[str]:
    return [x["kind"] for x in site.msgs(stream)]


def _replies(site: RawSite) -> dict[str, dict[str, Any]]:
    return {m["id"]: m for m in site.received if m.get("type") == "reply"}


async def _request(site: RawSite, rid: str, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    await site.send({"type": "req", "id": rid, "kind": kind, "body": body})
    await eventually(lambda: rid in _replies(site), what=f"reply {rid}")
    return _replies(site)[rid]


async def test_meeting_over_real_sessions(live: Live) -> None:
    hub, svc, d = live.hub, live.svc, live.d
    invited = [sid for sid in d.site_ids if d.province_of[sid] == d.provinces[0]]
    outsider_id = next(sid for sid in d.site_ids if d.province_of[sid] == d.provinces[1])
    a, b = RawSite(hub), RawSite(hub)
    outsider = RawSite(hub)
    await a.connect(join_code=d.codes[invited[0]])
    await b.connect(join_code=d.codes[invited[1]])
    await outsider.connect(join_code=d.codes[outsider_id])

    m = await svc.lifecycle.create_meeting(
        live.chair, title="Họp khẩn", invite=InviteSpec(unit_ids=(d.provinces[0],))
    )
    await svc.lifecycle.start_meeting(live.chair, m.id)
    stream = f"meeting:{m.id}"
    await eventually(
        lambda: all(_kinds(x, stream) == ["meeting.started"] for x in (a, b)), what="started"
    )
    assert outsider.msgs(stream) == []

    reply = await _request(outsider, "o1", "meeting.join", {"meeting_id": m.id})
    assert not reply["ok"] and reply["error"]["code"] == "not_invited"
    for i, site in enumerate((a, b)):
        reply = await _request(site, f"j{i}", "meeting.join", {})
        assert reply["ok"] and reply["body"]["meeting"]["id"] == m.id
    # A site speaking for another is refused over its session too.
    reply = await _request(a, "x1", "hand.raise", {"site_id": invited[1]})
    assert not reply["ok"] and reply["error"]["code"] == "not_your_site"
    reply = await _request(b, "h1", "hand.raise", {})
    assert reply["ok"] and reply["body"]["position"] == 1

    decision = await svc.floor.next(live.chair, m.id)
    assert [s.site_id for s in decision.speakers] == [invited[1]]
    await eventually(lambda: all("floor.changed" in _kinds(x, stream) for x in (a, b)))
    for site in (a, b):
        floor = [x for x in site.msgs(stream) if x["kind"] == "floor.changed"][-1]
        assert floor["body"]["speakers"][0]["site_id"] == invited[1]
        assert floor["body"]["version"] == decision.version

    # B's session drops: its interval closes; it reconnects and is present again.
    await b.close()
    await eventually(lambda: not svc.attendance.is_present(m.id, invited[1]), what="b absent")
    summary = await svc.roll_call.summary(m.id)
    assert (summary.total.present, summary.total.left) == (1, 1)
    b2 = RawSite(hub)
    await b2.connect(join_code=d.codes[invited[1]])
    await eventually(lambda: svc.attendance.is_present(m.id, invited[1]), what="b back")
    summary = await svc.roll_call.summary(m.id)
    assert (summary.total.present, summary.total.rejoined, summary.total.not_joined) == (2, 1, 1)

    await svc.lifecycle.end_meeting(live.chair, m.id)
    await eventually(
        lambda: any(x["kind"] == "meeting.ended" for x in a.msgs(stream)), what="ended"
    )
    assert hub.followers(stream) == set()
    for site in (a, b2, outsider):
        await site.close()


async def test_a_crowd_of_joins_reads_floor_and_conclusions_once(live: Live) -> None:
    """10,794 sites join a national meeting within seconds: each is told the floor and
    the conclusions, which must not cost one store read per site (the store has a few
    connections; thousands of reads queued behind each other timed joins out)."""
    from sqlalchemy import event

    svc, d = live.svc, live.d
    m = await svc.lifecycle.create_meeting(
        live.chair, title="Họp toàn quốc", invite=InviteSpec(everyone=True)
    )
    await svc.lifecycle.start_meeting(live.chair, m.id)
    svc.floor._last.pop(m.id)  # as after a restart: no decision in memory, the store says
    reads: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "meeting_floor" in statement or "meeting_conclusions" in statement:
            reads.append(statement)

    engine = live.svc.store.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        import asyncio

        floors = await asyncio.gather(*(svc.floor.for_site(m.id) for _ in range(50)))
        lists = await asyncio.gather(*(svc.conclusions.for_site(m.id, s) for s in d.site_ids))
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert all(f == floors[0] for f in floors) and floors[0]["speakers"] == []
    assert all(c == [] for c in lists)
    conclusion_reads = [r for r in reads if "meeting_conclusions" in r]
    floor_reads = [r for r in reads if "meeting_floor" in r]
    assert len(conclusion_reads) == 1, conclusion_reads
    assert 1 <= len(floor_reads) <= 3, floor_reads  # one `state` read for all 50 callers
