"""The past of a meeting as plain records, read-only, for its timeline and its minutes.

Meetings owns its tables; other packages (the recording service builds the
timeline and the minutes from this) read a meeting's history here instead of
querying them. Every method returns frozen records in time order, site ids only:
names come from the site directory, as everywhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute

from diemcau.meetings.models import (
    Meeting,
    MeetingAttendance,
    MeetingConclusion,
    MeetingConclusionAck,
    MeetingFloor,
    MeetingHand,
    MeetingLiveSite,
    MeetingParticipant,
)
from diemcau.store import Database, StaffUser

__all__ = [
    "AckRecord",
    "ConclusionRecord",
    "FloorRecord",
    "HandRecord",
    "IntervalRecord",
    "MeetingHistory",
    "MeetingRecord",
]

# A meeting's timeline tables (presence intervals, floor grants, hands).
_Row = TypeVar("_Row", MeetingAttendance, MeetingFloor, MeetingHand)


@dataclass(frozen=True)
class MeetingRecord:
    """A meeting's identity, schedule and chair."""

    id: int
    title: str
    agenda: str
    state: str
    chair_user_id: int
    chair_name: str
    delegates: tuple[int, ...]
    started_at: datetime | None
    ended_at: datetime | None
    late_after_s: int


@dataclass(frozen=True)
class IntervalRecord:
    """One presence interval of a site: [joined_at, left_at)."""

    site_id: int
    joined_at: datetime
    left_at: datetime | None
    left_reason: str | None


@dataclass(frozen=True)
class FloorRecord:
    """One floor grant (an intervention): the site spoke from granted_at to revoked_at."""

    id: int
    site_id: int
    granted_at: datetime
    revoked_at: datetime | None
    granted_by: str


@dataclass(frozen=True)
class HandRecord:
    """One raised hand and how it closed (lowered, granted, dismissed, ended, left)."""

    site_id: int
    raised_at: datetime
    closed_at: datetime | None
    outcome: str | None


@dataclass(frozen=True)
class AckRecord:
    site_id: int
    acked_at: datetime


@dataclass(frozen=True)
class ConclusionRecord:
    """A published conclusion and every acknowledgement of it."""

    id: int
    body: str
    published_at: datetime
    acks: tuple[AckRecord, ...]


class MeetingHistory:
    """Read-only queries over one store's meeting tables."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def meeting(self, meeting_id: int) -> MeetingRecord | None:
        async with self.db.session() as s:
            row = (
                await s.execute(
                    select(Meeting, StaffUser.username, StaffUser.display_name)
                    .outerjoin(StaffUser, StaffUser.id == Meeting.chair_user_id)
                    .where(Meeting.id == meeting_id)
                )
            ).first()
        if row is None:
            return None
        m, username, display = row
        return MeetingRecord(
            id=m.id,
            title=m.title,
            agenda=m.agenda,
            state=m.state,
            chair_user_id=m.chair_user_id,
            chair_name=display or username or "",
            delegates=tuple(m.delegates or ()),
            started_at=m.started_at,
            ended_at=m.ended_at,
            late_after_s=m.late_after_s,
        )

    async def live_meeting_of(self, site_id: int) -> int | None:
        """The live meeting holding a site, if any (one at most)."""
        async with self.db.session() as s:
            found: int | None = await s.scalar(
                select(MeetingLiveSite.meeting_id).where(MeetingLiveSite.site_id == site_id)
            )
            return found

    async def participants(self, meeting_id: int) -> list[int]:
        async with self.db.session() as s:
            rows = await s.scalars(
                select(MeetingParticipant.site_id)
                .where(MeetingParticipant.meeting_id == meeting_id)
                .order_by(MeetingParticipant.site_id)
            )
            return list(rows.all())

    async def _in_time_order(
        self, table: type[_Row], meeting_id: int, at: InstrumentedAttribute[datetime]
    ) -> Sequence[_Row]:
        """A meeting's rows of `table`, oldest first (by `at`, then by id)."""
        async with self.db.session() as s:
            rows = await s.scalars(
                select(table).where(table.meeting_id == meeting_id).order_by(at, table.id)
            )
            return rows.all()

    async def attendance(self, meeting_id: int) -> list[IntervalRecord]:
        rows = await self._in_time_order(MeetingAttendance, meeting_id, MeetingAttendance.joined_at)
        return [IntervalRecord(r.site_id, r.joined_at, r.left_at, r.left_reason) for r in rows]

    async def floor(self, meeting_id: int) -> list[FloorRecord]:
        rows = await self._in_time_order(MeetingFloor, meeting_id, MeetingFloor.granted_at)
        return [
            FloorRecord(r.id, r.site_id, r.granted_at, r.revoked_at, r.granted_by) for r in rows
        ]

    async def hands(self, meeting_id: int) -> list[HandRecord]:
        rows = await self._in_time_order(MeetingHand, meeting_id, MeetingHand.raised_at)
        return [HandRecord(r.site_id, r.raised_at, r.closed_at, r.outcome) for r in rows]

    async def conclusions(self, meeting_id: int) -> list[ConclusionRecord]:
        async with self.db.session() as s:
            rows = (
                await s.scalars(
                    select(MeetingConclusion)
                    .where(MeetingConclusion.meeting_id == meeting_id)
                    .order_by(MeetingConclusion.id)
                )
            ).all()
            acks: dict[int, list[AckRecord]] = {r.id: [] for r in rows}
            if rows:
                found = await s.execute(
                    select(
                        MeetingConclusionAck.conclusion_id,
                        MeetingConclusionAck.site_id,
                        MeetingConclusionAck.acked_at,
                    )
                    .where(MeetingConclusionAck.conclusion_id.in_(list(acks)))
                    .order_by(MeetingConclusionAck.acked_at)
                )
                for cid, sid, at in found:
                    acks[cid].append(AckRecord(sid, at))
        return [ConclusionRecord(r.id, r.body, r.published_at, tuple(acks[r.id])) for r in rows]
