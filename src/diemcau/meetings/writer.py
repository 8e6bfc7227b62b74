"""Group commit of attendance changes.

When a national meeting starts, thousands of sites join within a second. One SQLite
transaction per join makes them queue on the database lock (and on SQLite's
busy-wait back-off); instead every change queued while a transaction runs goes into
the next one, and each caller still returns only after its change is committed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, insert, update

from diemcau.meetings.models import MeetingAttendance, MeetingParticipant
from diemcau.store import Database
from diemcau.store.outage import is_store_outage

__all__ = ["AttendanceOp", "AttendanceWriter"]


@dataclass
class AttendanceOp:
    """One change: open a presence interval, or close one; optionally set ``wants_in``.

    Attributes:
        open: True opens an interval at `at`; False closes `interval_id` (if given).
        wants: the participant's new ``wants_in`` flag, or None to leave it.
    """

    meeting_id: int
    site_id: int
    at: datetime
    open: bool
    wants: bool | None = None
    interval_id: int | None = None
    reason: str = ""
    future: asyncio.Future[int | None] | None = field(default=None, repr=False)


class AttendanceWriter:
    """Writes `AttendanceOp` s in batches, in submission order, one transaction per batch."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._pending: list[AttendanceOp] = []
        self._task: asyncio.Task[None] | None = None
        self.batches = 0

    async def submit(self, op: AttendanceOp) -> int | None:
        """Queue `op` and wait for its commit; returns the new interval id for an open."""
        op.future = asyncio.get_running_loop().create_future()
        self._pending.append(op)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        return await op.future

    async def _run(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            await self._write_or_split(batch)

    async def _write_or_split(self, batch: list[AttendanceOp]) -> None:
        """Write `batch`; if one change in it is refused, find it by halving the batch.

        A store that cannot serve now (`is_store_outage`: PostgreSQL restarting, SQLite
        locked past its busy timeout) fails the whole batch at once, since every change in
        it would fail the same way: retried one by one, a batch of thousands used to hold
        the writer (and every join and leave queued behind it) for minutes. The callers
        apply their change again later (`Attendance` does). A change refused for itself
        (a broken constraint) fails alone: halving finds it in log2(n) rounds.
        """
        try:
            ids = await self._write(batch)
        except Exception as exc:
            if len(batch) == 1 or is_store_outage(exc):
                for op in batch:
                    self._settle(op, exc)
                return
            half = len(batch) // 2
            await self._write_or_split(batch[:half])
            await self._write_or_split(batch[half:])
            return
        for op, ident in zip(batch, ids, strict=True):
            self._settle(op, ident)

    @staticmethod
    def _settle(op: AttendanceOp, result: int | None | Exception) -> None:
        if op.future is None or op.future.done():
            return
        if isinstance(result, Exception):
            op.future.set_exception(result)
        else:
            op.future.set_result(result)

    async def _write(self, batch: list[AttendanceOp]) -> list[int | None]:
        """One transaction, one executemany per statement kind (a site has at most one op
        in flight, so the order inside a batch does not matter)."""
        self.batches += 1
        # Core tables: an executemany UPDATE with bound parameters per row.
        participants = cast(Table, MeetingParticipant.__table__)
        attendance = cast(Table, MeetingAttendance.__table__)
        who = (
            participants.c.meeting_id == bindparam("m"),
            participants.c.site_id == bindparam("s"),
        )
        wants = [
            {"m": op.meeting_id, "s": op.site_id, "w": op.wants}
            for op in batch
            if op.wants is not None
        ]
        opens = [op for op in batch if op.open]
        closes = [
            {"i": op.interval_id, "t": op.at, "r": op.reason}
            for op in batch
            if not op.open and op.interval_id is not None
        ]
        new_ids: list[int] = []
        async with self.db.session() as s:
            if wants:
                await s.execute(
                    update(participants).where(*who).values(wants_in=bindparam("w")), wants
                )
            if opens:
                result = await s.execute(
                    insert(MeetingAttendance).returning(
                        MeetingAttendance.id, sort_by_parameter_order=True
                    ),
                    [
                        {"meeting_id": op.meeting_id, "site_id": op.site_id, "joined_at": op.at}
                        for op in opens
                    ],
                )
                new_ids = list(result.scalars().all())
                await s.execute(
                    update(participants)
                    .where(*who, participants.c.first_joined_at.is_(None))
                    .values(first_joined_at=bindparam("t")),
                    [{"m": op.meeting_id, "s": op.site_id, "t": op.at} for op in opens],
                )
            if closes:
                await s.execute(
                    update(attendance)
                    .where(attendance.c.id == bindparam("i"), attendance.c.left_at.is_(None))
                    .values(left_at=bindparam("t"), left_reason=bindparam("r")),
                    closes,
                )
        ids = iter(new_ids)
        return [next(ids) if op.open else None for op in batch]
