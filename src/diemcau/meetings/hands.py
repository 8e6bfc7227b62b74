"""The raise-hand queue: sites asking for the floor, oldest first.

A present site raises its hand (idempotent: raising twice keeps its place) and lowers
it; the chair's `next` takes the oldest present hand, and a grant closes the granted
site's hand. Each hand is a stored row, so the queue survives a restart, and each
change is told to the staff consoles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import ColumnElement, CursorResult, func, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from diemcau.actors import Actor
from diemcau.directory.sites import SiteDirectory
from diemcau.errors import Conflict
from diemcau.meetings.attendance import Attendance
from diemcau.meetings.models import MeetingHand
from diemcau.meetings.publisher import Publisher
from diemcau.meetings.store import MeetingStore
from diemcau.records import Record

__all__ = ["HandQueue", "QueueEntry"]


@dataclass(frozen=True)
class QueueEntry(Record):
    """A raised hand in the queue (position 1 is next)."""

    position: int
    site_id: int
    code: str
    name: str
    province_id: int | None
    province_name: str
    raised_at: datetime


def _open_hands(meeting_id: int) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    return (MeetingHand.meeting_id == meeting_id, MeetingHand.closed_at.is_(None))


@dataclass(eq=False, repr=False)
class HandQueue:
    """The raise-hand queue of every meeting.

    Args:
        store: the meetings' shared read side.
        sites: the directory's read model (codes and names in the queue).
        attendance: who is present (only a present site may raise its hand).
        publisher: tells staff of every raised and lowered hand.
    """

    store: MeetingStore
    sites: SiteDirectory
    attendance: Attendance
    publisher: Publisher

    # --- reads ------------------------------------------------------------------------

    async def queue(self, meeting_id: int) -> list[QueueEntry]:
        """Open hands of a meeting, oldest first."""
        async with self.store.db.session() as s:
            await self.store.load(s, meeting_id)
            rows = (
                await s.execute(
                    select(MeetingHand.site_id, MeetingHand.raised_at)
                    .where(*_open_hands(meeting_id))
                    .order_by(MeetingHand.raised_at, MeetingHand.id)
                )
            ).all()
        infos = await self.sites.by_ids(sid for sid, _ in rows)
        out = []
        for pos, (sid, at) in enumerate(rows, start=1):
            info = infos.get(sid)
            out.append(
                QueueEntry(
                    pos,
                    sid,
                    info.code if info else "",
                    info.name if info else "",
                    info.province_id if info else None,
                    info.province_name if info else "",
                    at,
                )
            )
        return out

    async def waiting(self, s: AsyncSession, meeting_id: int) -> list[int]:
        """Sites with an open hand, oldest first (in the caller's unit of work)."""
        rows = await s.scalars(
            select(MeetingHand.site_id)
            .where(*_open_hands(meeting_id))
            .order_by(MeetingHand.raised_at, MeetingHand.id)
        )
        return list(rows.all())

    async def count(self, s: AsyncSession, meeting_id: int) -> int:
        n = await s.scalar(
            select(func.count()).select_from(MeetingHand).where(*_open_hands(meeting_id))
        )
        return int(n or 0)

    # --- changes ----------------------------------------------------------------------

    async def close_granted(
        self, s: AsyncSession, meeting_id: int, site_ids: Sequence[int], now: datetime
    ) -> None:
        """Close the hands of sites just given the floor (in the decision's unit of work)."""
        if site_ids:
            await s.execute(
                update(MeetingHand)
                .where(*_open_hands(meeting_id), MeetingHand.site_id.in_(site_ids))
                .values(closed_at=now, outcome="granted")
            )

    async def raise_hand(self, site: Actor, meeting_id: int | None = None) -> QueueEntry:
        """A present site asks for the floor; raising twice keeps its place."""
        view = await self.store.site_meeting(site, meeting_id)
        site_id = site.site_id
        assert site_id is not None  # site_meeting admits site actors only
        if view.state != "live":
            raise Conflict(f"meeting {view.id} is not live", code="not_live")
        if not self.attendance.is_present(view.id, site_id):
            raise Conflict("join the meeting before raising your hand", code="not_present")
        now = self.store.now()
        try:
            async with self.store.db.session() as s:
                if site_id in await self.store.speaker_ids(s, view.id):
                    raise Conflict("this site already holds the floor", code="has_floor")
                existing = await s.scalar(
                    select(MeetingHand.id).where(
                        *_open_hands(view.id), MeetingHand.site_id == site_id
                    )
                )
                if existing is None:
                    s.add(MeetingHand(meeting_id=view.id, site_id=site_id, raised_at=now))
        except IntegrityError:
            pass  # raised concurrently: the first one keeps its place
        entry = await self._entry(view.id, site_id)
        await self.publisher.staff_event(
            "hand.raised", {"meeting_id": view.id, "entry": entry.as_dict()}
        )
        return entry

    async def _entry(self, meeting_id: int, site_id: int) -> QueueEntry:
        async with self.store.db.session() as s:
            hand = (
                await s.execute(
                    select(MeetingHand.id, MeetingHand.raised_at).where(
                        *_open_hands(meeting_id), MeetingHand.site_id == site_id
                    )
                )
            ).first()
            if hand is None:
                raise Conflict("this site's hand is not raised", code="hand_down")
            hid, at = hand
            ahead = await s.scalar(
                select(func.count())
                .select_from(MeetingHand)
                .where(
                    *_open_hands(meeting_id),
                    tuple_(MeetingHand.raised_at, MeetingHand.id) < tuple_(at, hid),
                )
            )
        info = await self.sites.get(site_id)
        assert info is not None  # a participant comes from the directory
        return QueueEntry(
            int(ahead or 0) + 1,
            site_id,
            info.code,
            info.name,
            info.province_id,
            info.province_name,
            at,
        )

    async def lower_hand(self, site: Actor, meeting_id: int | None = None) -> None:
        view = await self.store.site_meeting(site, meeting_id)
        assert site.site_id is not None  # site_meeting admits site actors only
        await self.close_hand(view.id, site.site_id, "lowered")

    async def close_hand(self, meeting_id: int, site_id: int, outcome: str) -> bool:
        now = self.store.now()
        async with self.store.db.session() as s:
            result = await s.execute(
                update(MeetingHand)
                .where(*_open_hands(meeting_id), MeetingHand.site_id == site_id)
                .values(closed_at=now, outcome=outcome)
            )
        closed = bool(cast("CursorResult[object]", result).rowcount)
        if closed:
            info = await self.sites.get(site_id)
            body = {
                "meeting_id": meeting_id,
                "site_id": site_id,
                "code": info.code if info else "",
                "outcome": outcome,
            }
            await self.publisher.staff_event("hand.lowered", body)
        return closed
