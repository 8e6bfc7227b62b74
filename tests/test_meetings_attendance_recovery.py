"""Roll call follows presence through store failures and races (issue 16's attendance collapse).

In the demo, a mass drop and reconnect (thousands of transitions in a second) made the
store refuse writes for a while ("database is locked", pool checkouts timing out). The
closes of the drop were stored, the reopens of the reconnect failed, and nothing ever
applied them again: every site online and joined, ``present 0/3355`` for the rest of
the meeting, and no floor grant possible (nobody present). These tests play that with
the fake hub on a real SQLite store, the failure injected into the attendance writer.

Bad inputs tried: the store failing three times in a row; a session dropping while its
join is being written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from sqlalchemy.exc import OperationalError

from diemcau.errors import Conflict
from diemcau.meetings import InviteSpec, MeetingService
from diemcau.meetings.writer import AttendanceOp
from diemcau.store import Database
from tests.presence_support import eventually
from tests.test_meetings_support import FakeClock, FakeHub, World, build_world


@dataclass
class Env:
    db: Database
    hub: FakeHub
    svc: MeetingService
    w: World


@pytest.fixture
async def env(db: Database) -> AsyncIterator[Env]:
    w = await build_world(db)
    hub = FakeHub()
    svc = MeetingService(db, hub, clock=FakeClock(), reminder_poll_s=0)
    svc.register()
    await svc.start()
    svc.attendance.retry_s = 0.05
    yield Env(db, hub, svc, w)
    await svc.stop()


async def _live_with(e: Env, joined: tuple[str, ...]) -> int:
    """A live meeting inviting C1-S and C2-S; the `joined` ones are online and in it."""
    invite = InviteSpec(site_ids=tuple(e.w.site_ids("C1-S", "C2-S")))
    chair = e.w.actor("chair")
    view = await e.svc.lifecycle.create_meeting(chair, title="Giao ban", invite=invite)
    await e.svc.lifecycle.start_meeting(chair, view.id)
    for code in joined:
        await e.hub.set_online(e.w.sites[code].site_id, True)
        await e.hub.message(e.w.sites[code], "meeting.join", {})
    return view.id


async def _present(e: Env, mid: int) -> int:
    summary = await e.svc.roll_call.summary(mid)
    return summary.total.present


def _locked() -> OperationalError:
    return OperationalError("UPDATE meeting_attendance", {}, sqlite3.OperationalError("locked"))


def _flaky_writes(
    e: Env, failures: int
) -> Callable[[list[AttendanceOp]], Awaitable[list[int | None]]]:
    """The writer's transaction fails `failures` times ("database is locked"), then works."""
    real = e.svc.attendance.writer._write
    left = [failures]

    async def write(batch: list[AttendanceOp]) -> list[int | None]:
        if left[0] > 0:
            left[0] -= 1
            raise _locked()
        return await real(batch)

    return write


async def _transition(e: Env, site_id: int, online: bool) -> None:
    # PresenceHub logs a failing listener and goes on; so does the test.
    with contextlib.suppress(OperationalError):
        await e.hub.set_online(site_id, online)


async def test_reconnect_reopens_attendance_after_the_store_refused_it(
    env: Env, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    e = env
    c1, c2 = e.w.sites["C1-S"], e.w.sites["C2-S"]
    mid = await _live_with(e, ("C1-S", "C2-S"))
    assert await _present(e, mid) == 2

    # The mass drop: both sessions end, the closes are stored.
    await _transition(e, c1.site_id, False)
    await _transition(e, c2.site_id, False)
    assert await _present(e, mid) == 0

    # Both come back while the store refuses three transactions in a row.
    monkeypatch.setattr(e.svc.attendance.writer, "_write", _flaky_writes(e, 3))
    with caplog.at_level(logging.WARNING, logger="diemcau.meetings.attendance"):
        await _transition(e, c1.site_id, True)
        await _transition(e, c2.site_id, True)

        # Roll call catches up by itself, the store and the service's mirror agree...
        def both_present() -> bool:
            return all(e.svc.attendance.is_present(mid, s.site_id) for s in (c1, c2))

        await eventually(both_present, timeout=5, what="attendance reopened after the failure")
    assert await _present(e, mid) == 2
    assert "will retry" in caplog.text  # and said so
    _, _, sites = await e.svc.roll_call.sites(mid)
    assert [[r for _, _, r in a.intervals] for a in sites] == [["offline", None]] * 2

    # ... and floor eligibility is back: a present site may be given the floor.
    decision = await e.svc.floor.grant(e.w.actor("chair"), mid, [c1.site_id])
    assert [s.code for s in decision.speakers] == ["C1-S"]


async def test_a_drop_during_the_join_write_leaves_the_site_absent(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    e = env
    c1, c2 = e.w.sites["C1-S"], e.w.sites["C2-S"]
    mid = await _live_with(e, ("C2-S",))
    await e.hub.set_online(c1.site_id, True)

    # C1's join waits in the writer (a busy store) while its session drops.
    real = e.svc.attendance.writer._write
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow(batch: list[AttendanceOp]) -> list[int | None]:
        entered.set()
        await release.wait()
        return await real(batch)

    monkeypatch.setattr(e.svc.attendance.writer, "_write", slow)
    join = asyncio.create_task(e.hub.message(c1, "meeting.join", {}))
    await asyncio.wait_for(entered.wait(), 5)
    drop = asyncio.create_task(_transition(e, c1.site_id, False))
    await asyncio.sleep(0)  # the listener has seen the drop
    release.set()
    await join
    await drop

    # Not a phantom: offline, so not present, not eligible for the floor.
    assert not e.svc.attendance.is_present(mid, c1.site_id)
    assert await _present(e, mid) == 1
    with pytest.raises(Conflict, match="not present"):
        await e.svc.floor.grant(e.w.actor("chair"), mid, [c1.site_id])
    # Back online: it had joined, so it is present again.
    await _transition(e, c1.site_id, True)
    assert e.svc.attendance.is_present(mid, c1.site_id)
    assert await _present(e, mid) == 2
    assert e.svc.attendance.is_present(mid, c2.site_id)


async def test_a_join_cancelled_while_its_write_is_queued_is_still_followed(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    e = env
    c1 = e.w.sites["C1-S"]
    mid = await _live_with(e, ())
    await e.hub.set_online(c1.site_id, True)

    real = e.svc.attendance.writer._write
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow(batch: list[AttendanceOp]) -> list[int | None]:
        entered.set()
        await release.wait()
        return await real(batch)

    monkeypatch.setattr(e.svc.attendance.writer, "_write", slow)
    # The session closes while the join is being written: the hub cancels the request.
    join = asyncio.create_task(e.hub.message(c1, "meeting.join", {}))
    await asyncio.wait_for(entered.wait(), 5)
    join.cancel()
    drop = asyncio.create_task(_transition(e, c1.site_id, False))
    await asyncio.sleep(0)
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await join
    await drop

    # The join's write committed and the drop closed it: no interval left open.
    assert not e.svc.attendance.is_present(mid, c1.site_id)
    assert await _present(e, mid) == 0
    _, _, sites = await e.svc.roll_call.sites(mid)
    assert [[r for _, _, r in a.intervals] for a in sites if a.code == "C1-S"] == [["offline"]]
    # It had joined: back online, it is present again.
    await _transition(e, c1.site_id, True)
    assert await _present(e, mid) == 1
