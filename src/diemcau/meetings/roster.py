"""Who takes part in a meeting: participants stored at its start, changed by invitation edits.

A meeting's invitation rule is resolved to concrete sites once, at its start; from then
on its participants are rows of their own (and ``meeting_live_sites`` holds each site in
at most one live meeting: its primary key refuses a second one even under a race).
Changing the invitations of a live meeting adds and removes participants here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from diemcau.actors import Actor
from diemcau.audit import record_audit
from diemcau.errors import Conflict, Invalid
from diemcau.meetings.attendance import Attendance
from diemcau.meetings.floor import FloorControl
from diemcau.meetings.invites import Invitations, InviteSpec
from diemcau.meetings.models import (
    MeetingAttendance,
    MeetingHand,
    MeetingLiveSite,
    MeetingParticipant,
)
from diemcau.meetings.ports import Hub
from diemcau.meetings.publisher import Publisher, stream_of
from diemcau.meetings.store import MeetingStore
from diemcau.meetings.views import MeetingView

__all__ = ["Roster", "close_open"]


@dataclass(eq=False, repr=False)
class Roster:
    """The participants of every meeting.

    Args:
        store: the meetings' shared read side (locks, clock, live-site mirror).
        invitations: resolves an invitation rule to site ids.
        hub: the presence hub (stream membership, per-site messages).
        publisher: tells staff of the change.
        attendance: forgets the presence of removed sites.
        floor: takes the floor back from a removed speaker.
    """

    store: MeetingStore
    invitations: Invitations
    hub: Hub
    publisher: Publisher
    attendance: Attendance
    floor: FloorControl

    # --- inside a decision's unit of work ---------------------------------------------

    async def check_busy(self, site_ids: Sequence[int], meeting_id: int) -> None:
        """Refuse when any of `site_ids` is already in another live meeting.

        Checked against the in-memory mirror of ``meeting_live_sites``; the table's
        primary key still refuses a race (IntegrityError at commit → Conflict).
        """
        live = self.store.live_site_meeting
        busy = [(sid, live[sid]) for sid in site_ids if sid in live and live[sid] != meeting_id]
        if busy:
            infos = await self.store.sites.by_ids(sid for sid, _ in busy[:3])
            names = ", ".join(
                f"{infos[sid].code if sid in infos else sid} (meeting {mid})"
                for sid, mid in busy[:3]
            )
            more = f" and {len(busy) - 3} more" if len(busy) > 3 else ""
            raise Conflict(
                f"{len(busy)} invited site(s) are already in another live meeting: {names}{more}",
                code="site_busy",
            )

    async def add(self, s: AsyncSession, meeting_id: int, site_ids: Sequence[int]) -> None:
        """Store sites as participants of a live meeting (and hold them in it)."""
        if not site_ids:
            return
        infos = await self.store.sites.by_ids(site_ids)
        await s.execute(
            insert(MeetingParticipant),
            [
                {
                    "meeting_id": meeting_id,
                    "site_id": sid,
                    "province_id": infos[sid].province_id if sid in infos else None,
                    "wants_in": False,
                }
                for sid in site_ids
            ],
        )
        await s.execute(
            insert(MeetingLiveSite),
            [{"site_id": sid, "meeting_id": meeting_id} for sid in site_ids],
        )

    async def remove(
        self, s: AsyncSession, meeting_id: int, site_ids: Sequence[int], now: datetime
    ) -> None:
        """Remove participants: close their presence and hands, free them."""
        for start in range(0, len(site_ids), 500):
            chunk = site_ids[start : start + 500]
            await close_open(s, meeting_id, now, "uninvited", "dismissed", chunk)
            await s.execute(
                delete(MeetingParticipant).where(
                    MeetingParticipant.meeting_id == meeting_id,
                    MeetingParticipant.site_id.in_(chunk),
                )
            )
            await s.execute(
                delete(MeetingLiveSite).where(
                    MeetingLiveSite.meeting_id == meeting_id, MeetingLiveSite.site_id.in_(chunk)
                )
            )

    # --- invitation edits -------------------------------------------------------------

    async def set_invites(self, actor: Actor, meeting_id: int, invite: InviteSpec) -> MeetingView:
        """Change who is invited. On a live meeting, newly invited sites are added and told;
        sites no longer invited are removed (their presence interval closes)."""
        if invite.is_empty:
            raise Invalid("invite someone: the whole country, units, sites or a saved group")
        async with self.store.lock(meeting_id):
            try:
                view, added, removed = await self._store_invites(actor, meeting_id, invite)
            except IntegrityError as exc:
                raise Conflict(
                    "a newly invited site joined another live meeting meanwhile"
                ) from exc
            self.store.remember(view)
            if view.state == "live":
                await self._tell_live(view, added, removed)
        for sid in removed:  # outside the meeting's lock: a revoke takes it
            await self.floor.speaker_left(meeting_id, sid)
        await self.publisher.meeting_event("meeting.updated", view)
        return view

    async def _store_invites(
        self, actor: Actor, meeting_id: int, invite: InviteSpec
    ) -> tuple[MeetingView, list[int], list[int]]:
        """Persist the new rule (and, when live, the participants) with its audit record."""
        now = self.store.now()
        added: list[int] = []
        removed: list[int] = []
        async with self.store.db.session() as s:
            m = await self.store.load_to_run(s, actor, meeting_id, "change the invitations")
            if m.state == "ended":
                raise Conflict(f"meeting {meeting_id} has ended", code="ended")
            new_ids = await self.invitations.resolve(invite, s)
            if not new_ids:
                raise Invalid("this invitation resolves to no site")
            before = m.invited_count
            if m.state == "live":
                old = set(
                    (
                        await s.scalars(
                            select(MeetingParticipant.site_id).where(
                                MeetingParticipant.meeting_id == meeting_id
                            )
                        )
                    ).all()
                )
                added = sorted(set(new_ids) - old)
                removed = sorted(old - set(new_ids))
                await self.check_busy(added, meeting_id)
                await self.add(s, meeting_id, added)
                await self.remove(s, meeting_id, removed, now)
            m.invite_spec = invite.to_json()
            m.invited_count = len(new_ids)
            details = {
                "invite": invite.to_json(),
                "before": before,
                "after": len(new_ids),
                "added": len(added),
                "removed": len(removed),
            }
            await record_audit(s, actor, "meeting.invites", meeting_id, details=details, at=now)
            view = MeetingView.of(m)
        return view, added, removed

    async def _tell_live(self, view: MeetingView, added: list[int], removed: list[int]) -> None:
        """Update the mirrors and tell added and removed sites (after the commit)."""
        meeting_id = view.id
        self.store.hold(meeting_id, added)
        self.store.release(meeting_id, removed)
        for sid in removed:
            self.attendance.forget(meeting_id, sid)
        if added:
            await self.hub.follow(stream_of(meeting_id), added)
            await self.hub.send(
                added,
                "meeting.started",
                {"meeting": view.site_dict()},
                msg_id=f"meeting:{meeting_id}:started",
            )
        if removed:
            await self.hub.unfollow(stream_of(meeting_id), removed)
            await self.hub.send(removed, "meeting.removed", {"meeting_id": meeting_id})


async def close_open(
    s: AsyncSession,
    meeting_id: int,
    now: datetime,
    left_reason: str,
    hand_outcome: str,
    site_ids: Sequence[int] | None = None,
) -> None:
    """Close the open presence intervals and hands of a meeting's sites (None: all of them).

    Args:
        left_reason: why the intervals end ("uninvited", "ended").
        hand_outcome: what became of the hands ("dismissed", "ended").
    """
    intervals = [MeetingAttendance.meeting_id == meeting_id, MeetingAttendance.left_at.is_(None)]
    hands = [MeetingHand.meeting_id == meeting_id, MeetingHand.closed_at.is_(None)]
    if site_ids is not None:
        intervals.append(MeetingAttendance.site_id.in_(site_ids))
        hands.append(MeetingHand.site_id.in_(site_ids))
    await s.execute(
        update(MeetingAttendance).where(*intervals).values(left_at=now, left_reason=left_reason)
    )
    await s.execute(update(MeetingHand).where(*hands).values(closed_at=now, outcome=hand_outcome))
