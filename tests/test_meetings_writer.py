"""The attendance group-commit writer: batches, order of results, one bad change isolated."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from diemcau.meetings import InviteSpec, MeetingService
from diemcau.meetings.models import MeetingAttendance, MeetingParticipant
from diemcau.meetings.writer import AttendanceOp, AttendanceWriter
from diemcau.store import Database
from diemcau.store.reach import StoreUnavailable
from tests.test_meetings_support import FakeHub, build_world


async def test_concurrent_changes_share_transactions_and_a_bad_one_fails_alone(
    db: Database,
) -> None:
    w = await build_world(db)
    svc = MeetingService(db, FakeHub(), reminder_poll_s=0)
    m = await svc.lifecycle.create_meeting(
        w.actor("chair"), title="W", invite=InviteSpec(everyone=True)
    )
    await svc.lifecycle.start_meeting(w.actor("chair"), m.id)
    writer = AttendanceWriter(db)
    at = datetime(2030, 1, 1, tzinfo=UTC)
    good = w.site_ids("C1-S", "C2-S", "C3-S", "C4-S")
    ops = [AttendanceOp(m.id, sid, at, open=True, wants=True) for sid in good]
    # Bad input: a site that does not exist (the foreign key refuses it).
    ops.insert(2, AttendanceOp(m.id, 999_999, at, open=True, wants=True))
    results = await asyncio.gather(*(writer.submit(op) for op in ops), return_exceptions=True)
    assert isinstance(results[2], IntegrityError)
    ids = [r for i, r in enumerate(results) if i != 2 and isinstance(r, int)]
    assert len(set(ids)) == 4
    assert writer.batches <= 1 + 2 * 3  # one shared try, then halves down to the bad one
    async with db.session() as s:
        rows = (await s.execute(select(MeetingAttendance.id, MeetingAttendance.site_id))).all()
        assert sorted(sid for _, sid in rows) == good
        by_id = dict(rows)
        assert [by_id[i] for i in ids] == good  # each caller got its own interval id
        wants = (
            await s.scalars(
                select(MeetingParticipant.site_id).where(MeetingParticipant.wants_in.is_(True))
            )
        ).all()
        assert sorted(wants) == good
    # Closing one interval touches only that one.
    await writer.submit(
        AttendanceOp(m.id, good[0], at, open=False, wants=False, interval_id=ids[0], reason="leave")
    )
    async with db.session() as s:
        left = (
            await s.execute(
                select(MeetingAttendance.site_id, MeetingAttendance.left_reason).where(
                    MeetingAttendance.left_at.is_not(None)
                )
            )
        ).all()
    assert [tuple(r) for r in left] == [(good[0], "leave")]
    with pytest.raises(IntegrityError):
        await writer.submit(AttendanceOp(m.id, 999_999, at, open=True))


async def test_a_store_out_of_reach_fails_the_batch_at_once() -> None:
    """Nothing listens where this store should be (a PostgreSQL server restarting): the
    batch fails in one try, every caller told, instead of a retry per change (which held
    the writer for minutes when the batch was a national join)."""
    db = Database("postgresql+asyncpg://diemcau:x@127.0.0.1:9/diemcau")
    try:
        writer = AttendanceWriter(db)
        at = datetime(2030, 1, 1, tzinfo=UTC)
        ops = [AttendanceOp(1, sid, at, open=True, wants=True) for sid in range(1, 51)]
        results = await asyncio.gather(*(writer.submit(op) for op in ops), return_exceptions=True)
        assert all(isinstance(r, StoreUnavailable) for r in results), results[:3]
        assert writer.batches == 1
    finally:
        await db.dispose()
