"""A meeting's lifecycle: scheduled → live → ended, with its edits and planned end.

Every change is one method that persists, audits and then announces (docs/meetings.md,
"Persist, then announce"): the database commit comes first, so a crash never announces
something that was not stored.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from diemcau.actors import Actor
from diemcau.audit import record_audit
from diemcau.errors import Conflict, Forbidden, Invalid, NotFound
from diemcau.meetings.access import CHAIR_ROLES, CREATOR_ROLES
from diemcau.meetings.attendance import Attendance
from diemcau.meetings.floor import FloorControl
from diemcau.meetings.invites import Invitations, InviteSpec
from diemcau.meetings.models import (
    Meeting,
    MeetingFloor,
    MeetingLiveSite,
    MeetingParticipant,
)
from diemcau.meetings.ports import FloorDecision, Hub
from diemcau.meetings.publisher import Publisher, stream_of
from diemcau.meetings.roster import Roster, close_open
from diemcau.meetings.store import MeetingStore
from diemcau.meetings.views import MeetingView
from diemcau.records import JsonObject, iso
from diemcau.store.models import StaffUser

__all__ = ["MeetingLifecycle"]

MAX_TITLE = 300
MAX_AGENDA = 20000
MAX_EXTEND_MIN = 600


def _text(value: str, limit: int, what: str, *, required: bool = False) -> str:
    """NFC-normalise multi-line text (keeping its line breaks) and check its length."""
    clean = unicodedata.normalize("NFC", value).strip()
    if required and not clean:
        raise Invalid(f"{what} must not be empty")
    if len(clean) > limit:
        raise Invalid(f"{what} is too long ({len(clean)} > {limit} characters)")
    return clean


async def _lost_control(s: AsyncSession, m: Meeting, delegates: set[int]) -> list[str]:
    """Usernames of the delegates ``delegates`` drops who may not run the meeting
    otherwise (neither its chair nor an admin): the media plane takes the chair feed
    back from them (docs/media.md, "Who may publish and watch")."""
    dropped = set(m.delegates or ()) - delegates - {m.chair_user_id}
    if not dropped:
        return []
    rows = await s.execute(
        select(StaffUser.username).where(StaffUser.id.in_(dropped), StaffUser.role != "admin")
    )
    return sorted(rows.scalars())


async def _check_staff(s: AsyncSession, user_ids: Collection[int], what: str) -> None:
    for uid in user_ids:
        user = await s.get(StaffUser, uid)
        if user is None or user.disabled:
            raise NotFound(f"{what}: staff user {uid} not found or disabled", code="no_user")


def _check_plan(
    invite: InviteSpec,
    start: datetime | None,
    end: datetime | None,
    reminder_lead_s: int,
    late_after_s: int,
) -> None:
    """Refuse a new meeting's empty invitation, reversed schedule or out-of-range delays."""
    if invite.is_empty:
        raise Invalid("invite someone: the whole country, units, sites or a saved group")
    if start and end and end <= start:
        raise Invalid("the scheduled end must be after the scheduled start")
    if not 0 <= reminder_lead_s <= 7 * 86400:
        raise Invalid("reminder_lead_s must be between 0 and 604800")
    if not 0 <= late_after_s <= 86400:
        raise Invalid("late_after_s must be between 0 and 86400")


def _marker(view: MeetingView, action: str, actor: Actor, at: datetime) -> FloorDecision:
    """The floor decision that marks a meeting's start or end for floor listeners."""
    return FloorDecision(
        view.id,
        action,
        (),
        view.muted_all,
        view.unmute_allowed,
        view.floor_version,
        at,
        actor.name,
    )


@dataclass(eq=False, repr=False)
class MeetingLifecycle:
    """Creates, edits, starts, extends and ends meetings.

    Args:
        store: the meetings' shared read side (locks, clock, mirrors).
        invitations: resolves invitation rules to site ids.
        roster: stores and frees the participants.
        hub: the presence hub (the meeting stream's followers).
        publisher: announces each change to sites, staff and the media plane.
        attendance: forgets an ended meeting's presence.
        floor: tells floor listeners a program started or ended.
    """

    store: MeetingStore
    invitations: Invitations
    roster: Roster
    hub: Hub
    publisher: Publisher
    attendance: Attendance
    floor: FloorControl

    async def create_meeting(
        self,
        actor: Actor,
        *,
        title: str,
        invite: InviteSpec,
        agenda: str = "",
        chair_user_id: int | None = None,
        delegates: Sequence[int] = (),
        scheduled_start: datetime | None = None,
        scheduled_end: datetime | None = None,
        reminder_lead_s: int = 900,
        late_after_s: int = 300,
    ) -> MeetingView:
        """Schedule a meeting. The chair defaults to the caller when the caller may chair."""
        if not actor.has_role(*CREATOR_ROLES):
            raise Forbidden("only admins, chairs and operators create meetings", code="role")
        clean_title = _text(title, MAX_TITLE, "title", required=True)
        clean_agenda = _text(agenda, MAX_AGENDA, "agenda")
        _check_plan(invite, scheduled_start, scheduled_end, reminder_lead_s, late_after_s)
        if chair_user_id is None:
            if actor.role not in CHAIR_ROLES or actor.user_id is None:
                raise Invalid("name the chair (a staff user with the chair or admin role)")
            chair_user_id = actor.user_id
        now = self.store.now()
        async with self.store.db.session() as s:
            chair = await s.get(StaffUser, chair_user_id)
            if chair is None or chair.disabled or chair.role not in CHAIR_ROLES:
                raise Invalid(
                    f"staff user {chair_user_id} cannot chair (needs chair or admin role)"
                )
            await _check_staff(s, delegates, "delegate")
            invited = await self.invitations.resolve(invite, s)
            m = Meeting(
                title=clean_title,
                agenda=clean_agenda,
                state="scheduled",
                chair_user_id=chair_user_id,
                created_by_user_id=actor.user_id,
                delegates=sorted(set(delegates)),
                scheduled_start=scheduled_start,
                scheduled_end=scheduled_end,
                reminder_lead_s=reminder_lead_s,
                late_after_s=late_after_s,
                invite_spec=invite.to_json(),
                invited_count=len(invited),
                muted_all=False,
                unmute_allowed=True,
                floor_version=0,
                created_at=now,
            )
            s.add(m)
            await s.flush()
            details = {"title": clean_title, "invited": len(invited), "invite": invite.to_json()}
            await record_audit(s, actor, "meeting.create", m.id, details=details, at=now)
            view = MeetingView.of(m)
        await self.publisher.meeting_event("meeting.created", view)
        return view

    async def update_meeting(
        self,
        actor: Actor,
        meeting_id: int,
        *,
        title: str | None = None,
        agenda: str | None = None,
        scheduled_start: datetime | None = None,
        scheduled_end: datetime | None = None,
        delegates: Sequence[int] | None = None,
    ) -> MeetingView:
        """Edit title, agenda, schedule or delegates (not of an ended meeting)."""
        now = self.store.now()
        async with self.store.lock(meeting_id), self.store.db.session() as s:
            m = await self.store.load_to_run(s, actor, meeting_id, "edit this meeting")
            if m.state == "ended":
                raise Conflict(f"meeting {meeting_id} has ended", code="ended")
            changes: JsonObject = {}
            lost: list[str] = []
            if title is not None:
                m.title = changes["title"] = _text(title, MAX_TITLE, "title", required=True)
            if agenda is not None:
                m.agenda = _text(agenda, MAX_AGENDA, "agenda")
                changes["agenda"] = True
            if scheduled_start is not None or scheduled_end is not None:
                if m.state != "scheduled":
                    raise Conflict("the schedule of a live meeting is changed with 'extend'")
                start = scheduled_start or m.scheduled_start
                end = scheduled_end or m.scheduled_end
                if start and end and end <= start:
                    raise Invalid("the scheduled end must be after the scheduled start")
                m.scheduled_start, m.scheduled_end = start, end
                m.reminder_sent_at = None
                changes["scheduled_start"] = iso(start)
                changes["scheduled_end"] = iso(end)
            if delegates is not None:
                # A delegate runs the floor; it does not hand that power on.
                if actor.role != "admin" and actor.user_id != m.chair_user_id:
                    raise Forbidden(
                        f"only the chair of meeting {meeting_id} or an admin changes its delegates",
                        code="not_chair",
                    )
                await _check_staff(s, delegates, "delegate")
                if m.state == "live":
                    lost = await _lost_control(s, m, set(delegates))
                m.delegates = sorted(set(delegates))
                changes["delegates"] = m.delegates
            if not changes:
                raise Invalid("nothing to change")
            action = "meeting.delegates" if set(changes) == {"delegates"} else "meeting.update"
            await record_audit(s, actor, action, meeting_id, details=changes, at=now)
            view = MeetingView.of(m)
        self.store.remember(view)
        await self.publisher.meeting_event("meeting.updated", view)
        await self.publisher.chair_lost(meeting_id, lost)
        return view

    async def require_control(self, actor: Actor, meeting_id: int, what: str) -> MeetingView:
        """The meeting, if ``actor`` is its chair, one of its delegates or an admin.

        For rights held outside meetings, such as the chair feed's media grant
        (docs/media.md); raises `NotFound` or `Forbidden` otherwise.
        """
        async with self.store.db.session() as s:
            m = await self.store.load_to_run(s, actor, meeting_id, what)
            return MeetingView.of(m)

    async def start_meeting(self, actor: Actor, meeting_id: int) -> MeetingView:
        """Resolve and store the invited sites, go live, make them follow the meeting
        stream and announce the start to every invited site at once."""
        now = self.store.now()
        async with self.store.lock(meeting_id):
            try:
                view, site_ids = await self._store_start(actor, meeting_id, now)
            except IntegrityError as exc:
                raise Conflict(
                    "an invited site joined another live meeting meanwhile; try again",
                    code="site_busy",
                ) from exc
            self.store.remember(view)
            self.store.hold(meeting_id, site_ids)
            await self.hub.follow(stream_of(meeting_id), site_ids)
            await self.publisher.broadcast(
                meeting_id, "meeting.started", {"meeting": view.site_dict()}, staff=False
            )
            await self.publisher.meeting_event("meeting.started", view)
            await self.publisher.start_program(meeting_id)
            await self.floor.notify(_marker(view, "start", actor, now))
        return view

    async def _store_start(
        self, actor: Actor, meeting_id: int, now: datetime
    ) -> tuple[MeetingView, list[int]]:
        async with self.store.db.session() as s:
            m = await self.store.load_to_run(s, actor, meeting_id, "start this meeting")
            if m.state != "scheduled":
                raise Conflict(f"meeting {meeting_id} is already {m.state}", code=m.state)
            site_ids = await self.invitations.resolve(InviteSpec.from_json(m.invite_spec), s)
            if not site_ids:
                raise Invalid("the invitation resolves to no site; change it first")
            await self.roster.check_busy(site_ids, meeting_id)
            await self.roster.add(s, meeting_id, site_ids)
            m.state = "live"
            m.started_at = now
            m.invited_count = len(site_ids)
            if m.scheduled_end is not None and m.scheduled_end > now:
                m.ends_at = m.scheduled_end
            m.floor_version += 1
            details = {"invited": len(site_ids)}
            await record_audit(s, actor, "meeting.start", meeting_id, details=details, at=now)
            return MeetingView.of(m), site_ids

    async def extend_meeting(self, actor: Actor, meeting_id: int, minutes: int) -> MeetingView:
        """Move the planned end of a live meeting later (it never ends by itself)."""
        if not 1 <= minutes <= MAX_EXTEND_MIN:
            raise Invalid(f"extend by 1 to {MAX_EXTEND_MIN} minutes")
        now = self.store.now()
        async with self.store.lock(meeting_id):
            async with self.store.db.session() as s:
                m = await self.store.load_to_run(s, actor, meeting_id, "extend this meeting")
                if m.state != "live":
                    raise Conflict(f"only a live meeting can be extended (it is {m.state})")
                base = m.ends_at if m.ends_at is not None and m.ends_at > now else now
                m.ends_at = base + timedelta(minutes=minutes)
                details = {"minutes": minutes, "ends_at": m.ends_at.isoformat()}
                await record_audit(s, actor, "meeting.extend", meeting_id, details=details, at=now)
                view = MeetingView.of(m)
            self.store.remember(view)
            body = {"meeting_id": meeting_id, "ends_at": iso(view.ends_at)}
            await self.publisher.broadcast(
                meeting_id, "meeting.extended", {**body, "meeting": view.site_dict()}
            )
        return view

    async def end_meeting(self, actor: Actor, meeting_id: int) -> MeetingView:
        """End a live meeting: close every presence interval, hand and grant; free its sites."""
        now = self.store.now()
        async with self.store.lock(meeting_id):
            async with self.store.db.session() as s:
                m = await self.store.load_to_run(s, actor, meeting_id, "end this meeting")
                if m.state != "live":
                    raise Conflict(f"only a live meeting can be ended (it is {m.state})")
                await _close_out(s, meeting_id, now)
                m.state = "ended"
                m.ended_at = now
                m.floor_version += 1
                await record_audit(s, actor, "meeting.end", meeting_id, at=now)
                view = MeetingView.of(m)
            self.store.remember(view)
            self.store.release(meeting_id)
            self.attendance.forget_meeting(meeting_id)
            await self.publisher.broadcast(
                meeting_id, "meeting.ended", {"meeting": view.site_dict()}, staff=False
            )
            await self.publisher.meeting_event("meeting.ended", view)
            await self.hub.unfollow(stream_of(meeting_id))
            await self.publisher.stop_program(meeting_id)
            await self.floor.notify(_marker(view, "end", actor, now))
        return view


async def _close_out(s: AsyncSession, meeting_id: int, now: datetime) -> None:
    """Close every presence interval, hand and grant of a meeting; free its sites."""
    await close_open(s, meeting_id, now, "ended", "ended")
    await s.execute(
        update(MeetingFloor)
        .where(MeetingFloor.meeting_id == meeting_id, MeetingFloor.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    await s.execute(
        update(MeetingParticipant)
        .where(MeetingParticipant.meeting_id == meeting_id)
        .values(wants_in=False)
    )
    await s.execute(delete(MeetingLiveSite).where(MeetingLiveSite.meeting_id == meeting_id))
