"""The meeting service: lifecycle (scheduled → live → ended), invitations and reminders.

`MeetingService` is the one object the API, the site-session handlers and the media
layer talk to. It owns the lifecycle here and composes the floor (`floor.py`), roll
call (`attendance.py`) and conclusions (`conclusions.py`). Every state change is one
method that persists, audits and then publishes (DESIGN.md style §3): the database
commit comes first, so a crash never announces something that was not stored.
"""

from __future__ import annotations

import asyncio
import logging
import time
import unicodedata
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from diemcau.accounts.service import SitePrincipal, StaffPrincipal
from diemcau.errors import Conflict, Forbidden, Invalid, NotFound
from diemcau.meetings.attendance import Attendance
from diemcau.meetings.audit import record_audit
from diemcau.meetings.conclusions import Conclusions
from diemcau.meetings.floor import FloorControl
from diemcau.meetings.invites import InviteSpec, resolve_sites
from diemcau.meetings.models import (
    Meeting,
    MeetingAttendance,
    MeetingFloor,
    MeetingHand,
    MeetingLiveSite,
    MeetingParticipant,
)
from diemcau.meetings.ports import FloorDecision, Hub, NullHub, call_maybe_async
from diemcau.store import Database
from diemcau.store.models import Site, StaffUser, Unit
from diemcau.tasks import cancel_and_wait

__all__ = ["MeetingService", "MeetingView", "SiteInfo"]

log = logging.getLogger(__name__)

MAX_TITLE = 300
MAX_AGENDA = 20000
MAX_EXTEND_MIN = 600
CHAIR_ROLES = ("chair", "admin")
CREATOR_ROLES = ("admin", "chair", "operator")


def _text(value: str, limit: int, what: str, *, required: bool = False) -> str:
    """NFC-normalise multi-line text (keeping its line breaks) and check its length."""
    clean = unicodedata.normalize("NFC", value).strip()
    if required and not clean:
        raise Invalid(f"{what} must not be empty")
    if len(clean) > limit:
        raise Invalid(f"{what} is too long ({len(clean)} > {limit} characters)")
    return clean


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True)
class SiteInfo:
    """A site as meetings shows it: code, name and province (cached; names rarely change)."""

    site_id: int
    code: str
    name: str
    province_id: int | None
    province_name: str


@dataclass(frozen=True)
class MeetingView:
    """A meeting as callers see it."""

    id: int
    title: str
    agenda: str
    state: str
    chair_user_id: int
    delegates: tuple[int, ...]
    scheduled_start: datetime | None
    scheduled_end: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    ends_at: datetime | None
    reminder_lead_s: int
    late_after_s: int
    invite: InviteSpec
    invited_count: int
    muted_all: bool
    unmute_allowed: bool
    floor_version: int

    @classmethod
    def of(cls, m: Meeting) -> MeetingView:
        return cls(
            id=m.id,
            title=m.title,
            agenda=m.agenda,
            state=m.state,
            chair_user_id=m.chair_user_id,
            delegates=tuple(m.delegates or ()),
            scheduled_start=m.scheduled_start,
            scheduled_end=m.scheduled_end,
            started_at=m.started_at,
            ended_at=m.ended_at,
            ends_at=m.ends_at,
            reminder_lead_s=m.reminder_lead_s,
            late_after_s=m.late_after_s,
            invite=InviteSpec.from_json(m.invite_spec),
            invited_count=m.invited_count,
            muted_all=m.muted_all,
            unmute_allowed=m.unmute_allowed,
            floor_version=m.floor_version,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "agenda": self.agenda,
            "state": self.state,
            "chair_user_id": self.chair_user_id,
            "delegates": list(self.delegates),
            "scheduled_start": _iso(self.scheduled_start),
            "scheduled_end": _iso(self.scheduled_end),
            "started_at": _iso(self.started_at),
            "ended_at": _iso(self.ended_at),
            "ends_at": _iso(self.ends_at),
            "reminder_lead_s": self.reminder_lead_s,
            "late_after_s": self.late_after_s,
            "invite": self.invite.to_json(),
            "invited_count": self.invited_count,
            "muted_all": self.muted_all,
            "unmute_allowed": self.unmute_allowed,
            "floor_version": self.floor_version,
        }

    def site_dict(self) -> dict[str, Any]:
        """What a site is told about the meeting (no invitation rule, no staff ids)."""
        return {
            "id": self.id,
            "title": self.title,
            "agenda": self.agenda,
            "state": self.state,
            "scheduled_start": _iso(self.scheduled_start),
            "started_at": _iso(self.started_at),
            "ends_at": _iso(self.ends_at),
            "ended_at": _iso(self.ended_at),
        }


class MeetingService:
    """Meetings of one control server.

    Args:
        db: the store.
        hub: the presence hub (``runtime.services["presence"]``); a `NullHub` if absent.
        clock: wall clock in seconds (tests pass a fake one).
        media: returns the media orchestrator or None; looked up at each use, because
            the media layer may attach after meetings or not at all.
        reminder_poll_s: how often the reminder task looks for meetings about to start.
    """

    def __init__(
        self,
        db: Database,
        hub: Hub | None = None,
        *,
        clock: Callable[[], float] = time.time,
        media: Callable[[], Any | None] = lambda: None,
        reminder_poll_s: float = 5.0,
    ) -> None:
        self.db = db
        self.hub: Hub = hub if hub is not None else NullHub()
        self.clock = clock
        self._media = media
        self.reminder_poll_s = reminder_poll_s
        self._locks: dict[int, asyncio.Lock] = {}
        # site id -> the live meeting holding it (mirror of meeting_live_sites).
        self.live_site_meeting: dict[int, int] = {}
        self._sites: dict[int, SiteInfo] = {}
        # Live meetings as sites see them, so thousands of joins need no database read.
        self._site_views: dict[int, MeetingView] = {}
        self._reminder_task: asyncio.Task[None] | None = None
        self.floor = FloorControl(self)
        self.attendance = Attendance(self)
        self.conclusions = Conclusions(self)

    # --- plumbing ---------------------------------------------------------------------

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def lock(self, meeting_id: int) -> asyncio.Lock:
        """Serialises lifecycle and floor decisions of one meeting (one process owns them)."""
        lk = self._locks.get(meeting_id)
        if lk is None:
            lk = self._locks[meeting_id] = asyncio.Lock()
        return lk

    def media(self) -> Any | None:
        return self._media()

    @staticmethod
    def stream(meeting_id: int) -> str:
        return f"meeting:{meeting_id}"

    def register(self) -> None:
        """Route site messages and presence transitions to this service."""
        self.hub.on_message("meeting.join", self.attendance.handle_join)
        self.hub.on_message("meeting.leave", self.attendance.handle_leave)
        self.hub.on_message("hand.raise", self.floor.handle_raise)
        self.hub.on_message("hand.lower", self.floor.handle_lower)
        self.hub.on_message("conclusion.ack", self.conclusions.handle_ack)
        self.hub.add_listener(self.attendance.on_presence)

    async def start(self) -> None:
        """Reload live meetings from the store, reconcile attendance, start reminders."""
        async with self.db.session() as s:
            rows = await s.execute(select(MeetingLiveSite.site_id, MeetingLiveSite.meeting_id))
            self.live_site_meeting = {site: meeting for site, meeting in rows}
        await self.site_infos(self.live_site_meeting)
        await self.attendance.reconcile()
        await self._restore_media()
        if self._reminder_task is None and self.reminder_poll_s > 0:
            self._reminder_task = asyncio.create_task(self._reminder_loop())

    async def live_floors(self) -> dict[int, list[str]]:
        """Site codes holding the floor in every live meeting (for the media layer's restore)."""
        async with self.db.session() as s:
            live = (await s.scalars(select(Meeting.id).where(Meeting.state == "live"))).all()
            rows = (
                await s.execute(
                    select(MeetingFloor.meeting_id, MeetingFloor.site_id)
                    .where(MeetingFloor.meeting_id.in_(live), MeetingFloor.revoked_at.is_(None))
                    .order_by(MeetingFloor.id)
                )
            ).all()
        infos = await self.site_infos(sid for _, sid in rows)
        out: dict[int, list[str]] = {mid: [] for mid in live}
        for mid, sid in rows:
            if sid in infos:
                out[mid].append(infos[sid].code)
        return out

    async def _restore_media(self) -> None:
        """Re-declare running programs and their floor to the media orchestrator after a
        restart (``restore_program`` touches no node; the media layer reconciles the nodes
        when it starts)."""
        media = self.media()
        restore = getattr(media, "restore_program", None) if media is not None else None
        if restore is None:
            return
        for meeting_id, codes in (await self.live_floors()).items():
            await call_maybe_async("media.restore_program", restore, meeting_id, codes)

    async def stop(self) -> None:
        """Stop reminders and close every open presence interval now (``server_stop``).

        Sites that had joined keep ``wants_in`` and are present again as soon as their
        session is back after the restart. After a crash instead (no stop), the intervals
        are closed at the next start (``server_restart``).
        """
        task, self._reminder_task = self._reminder_task, None
        await cancel_and_wait(task)
        await self.attendance.close_all("server_stop")

    async def site_infos(self, site_ids: Iterable[int]) -> dict[int, SiteInfo]:
        """Code, name and province of sites, from the cache or the store."""
        ids = set(site_ids)
        missing = sorted(i for i in ids if i not in self._sites)
        if missing:
            prov = aliased(Unit)
            async with self.db.session() as s:
                for start in range(0, len(missing), 500):
                    chunk = missing[start : start + 500]
                    rows = await s.execute(
                        select(Site.id, Site.code, Site.name, Site.province_id, prov.name)
                        .outerjoin(prov, prov.id == Site.province_id)
                        .where(Site.id.in_(chunk))
                    )
                    for sid, code, name, pid, pname in rows:
                        self._sites[sid] = SiteInfo(sid, code, name, pid, pname or "")
        return {i: self._sites[i] for i in ids if i in self._sites}

    async def load(self, s: AsyncSession, meeting_id: int) -> Meeting:
        m = await s.get(Meeting, meeting_id)
        if m is None:
            raise NotFound(f"meeting {meeting_id} not found", code="no_meeting")
        return m

    def require_control(self, actor: object, m: Meeting, what: str) -> StaffPrincipal:
        """Only the meeting's chair, one of its delegates or an admin run a meeting."""
        if not isinstance(actor, StaffPrincipal):
            raise Forbidden(f"only staff may {what}", code="staff_only")
        if actor.role == "admin" or actor.user_id == m.chair_user_id:
            return actor
        if actor.user_id in (m.delegates or ()):
            return actor
        raise Forbidden(
            f"only the chair of meeting {m.id}, a delegate or an admin may {what}",
            code="not_chair",
        )

    async def publish(
        self, meeting_id: int, kind: str, body: dict[str, Any], *, staff: bool = True
    ) -> None:
        """Broadcast on the meeting's stream (encoded once by the hub) and tell staff."""
        try:
            await self.hub.broadcast(self.stream(meeting_id), kind, body)
        except Exception:
            log.exception("broadcast of %s for meeting %s failed", kind, meeting_id)
        if staff:
            try:
                await self.hub.publish_staff_event(kind, body)
            except Exception:
                log.exception("staff event %s for meeting %s failed", kind, meeting_id)

    async def media_call(self, method: str, *args: Any) -> None:
        media = self.media()
        if media is None:
            return
        fn = getattr(media, method, None)
        if fn is not None:
            await call_maybe_async(f"media.{method}", fn, *args)

    # --- queries ----------------------------------------------------------------------

    async def get_meeting(self, meeting_id: int) -> MeetingView:
        async with self.db.session() as s:
            return MeetingView.of(await self.load(s, meeting_id))

    async def list_meetings(self, state: str | None = None, limit: int = 200) -> list[MeetingView]:
        async with self.db.session() as s:
            stmt = select(Meeting).order_by(Meeting.id.desc()).limit(max(1, min(limit, 1000)))
            if state:
                stmt = stmt.where(Meeting.state == state)
            return [MeetingView.of(m) for m in (await s.scalars(stmt)).all()]

    async def participant_ids(self, meeting_id: int) -> list[int]:
        async with self.db.session() as s:
            rows = await s.scalars(
                select(MeetingParticipant.site_id).where(
                    MeetingParticipant.meeting_id == meeting_id
                )
            )
            return sorted(rows.all())

    async def is_participant(self, s: AsyncSession, meeting_id: int, site_id: int) -> bool:
        row = await s.scalar(
            select(MeetingParticipant.id).where(
                MeetingParticipant.meeting_id == meeting_id, MeetingParticipant.site_id == site_id
            )
        )
        return row is not None

    async def preview_invites(self, spec: InviteSpec) -> list[int]:
        """The site ids `spec` would invite now."""
        async with self.db.session() as s:
            return await resolve_sites(s, spec)

    async def site_meeting(self, site: SitePrincipal, meeting_id: int | None) -> MeetingView:
        """The meeting a site addresses: the given one, or the live one holding it.

        Raises Forbidden when the site is not invited, so an uninvited site learns
        nothing but that.
        """
        live = self.live_site_meeting.get(site.site_id)
        if meeting_id is None:
            if live is None:
                raise NotFound("no live meeting for this site", code="no_live_meeting")
            meeting_id = live
        if meeting_id == live:
            cached = self._site_views.get(live)
            if cached is not None:
                return cached
        async with self.db.session() as s:
            m = await s.get(Meeting, meeting_id)
            if m is None or not await self.is_participant(s, meeting_id, site.site_id):
                if m is not None and m.state == "scheduled":
                    raise Conflict(f"meeting {meeting_id} has not started", code="not_live")
                raise Forbidden(
                    f"site {site.code} is not invited to meeting {meeting_id}", code="not_invited"
                )
            return self._remember(MeetingView.of(m))

    def _remember(self, view: MeetingView) -> MeetingView:
        if view.state == "live":
            self._site_views[view.id] = view
        else:
            self._site_views.pop(view.id, None)
        return view

    # --- lifecycle --------------------------------------------------------------------

    async def _check_staff(self, s: AsyncSession, user_ids: Collection[int], what: str) -> None:
        for uid in user_ids:
            user = await s.get(StaffUser, uid)
            if user is None or user.disabled:
                raise NotFound(f"{what}: staff user {uid} not found or disabled", code="no_user")

    async def create_meeting(
        self,
        actor: StaffPrincipal,
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
        if not isinstance(actor, StaffPrincipal) or actor.role not in CREATOR_ROLES:
            raise Forbidden("only admins, chairs and operators create meetings", code="role")
        clean_title = _text(title, MAX_TITLE, "title", required=True)
        clean_agenda = _text(agenda, MAX_AGENDA, "agenda")
        if invite.is_empty:
            raise Invalid("invite someone: the whole country, units, sites or a saved group")
        if scheduled_start and scheduled_end and scheduled_end <= scheduled_start:
            raise Invalid("the scheduled end must be after the scheduled start")
        if not 0 <= reminder_lead_s <= 7 * 86400:
            raise Invalid("reminder_lead_s must be between 0 and 604800")
        if not 0 <= late_after_s <= 86400:
            raise Invalid("late_after_s must be between 0 and 86400")
        if chair_user_id is None:
            if actor.role not in CHAIR_ROLES:
                raise Invalid("name the chair (a staff user with the chair or admin role)")
            chair_user_id = actor.user_id
        now = self.now()
        async with self.db.session() as s:
            chair = await s.get(StaffUser, chair_user_id)
            if chair is None or chair.disabled or chair.role not in CHAIR_ROLES:
                raise Invalid(
                    f"staff user {chair_user_id} cannot chair (needs chair or admin role)"
                )
            await self._check_staff(s, delegates, "delegate")
            invited = await resolve_sites(s, invite)
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
            await record_audit(
                s,
                actor,
                "meeting.create",
                m.id,
                details={"title": clean_title, "invited": len(invited), "invite": invite.to_json()},
                at=now,
            )
            view = MeetingView.of(m)
        await self._staff_event("meeting.created", view)
        return view

    async def _staff_event(self, kind: str, view: MeetingView) -> None:
        try:
            await self.hub.publish_staff_event(kind, {"meeting": view.as_dict()})
        except Exception:
            log.exception("staff event %s failed", kind)

    async def update_meeting(
        self,
        actor: StaffPrincipal,
        meeting_id: int,
        *,
        title: str | None = None,
        agenda: str | None = None,
        scheduled_start: datetime | None = None,
        scheduled_end: datetime | None = None,
        delegates: Sequence[int] | None = None,
    ) -> MeetingView:
        """Edit title, agenda, schedule or delegates (not of an ended meeting)."""
        now = self.now()
        async with self.lock(meeting_id), self.db.session() as s:
            m = await self.load(s, meeting_id)
            self.require_control(actor, m, "edit this meeting")
            if m.state == "ended":
                raise Conflict(f"meeting {meeting_id} has ended", code="ended")
            changes: dict[str, Any] = {}
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
                changes["scheduled_start"] = _iso(start)
                changes["scheduled_end"] = _iso(end)
            if delegates is not None:
                await self._check_staff(s, delegates, "delegate")
                m.delegates = sorted(set(delegates))
                changes["delegates"] = m.delegates
            if not changes:
                raise Invalid("nothing to change")
            action = "meeting.delegates" if set(changes) == {"delegates"} else "meeting.update"
            await record_audit(s, actor, action, meeting_id, details=changes, at=now)
            view = MeetingView.of(m)
        self._remember(view)
        await self._staff_event("meeting.updated", view)
        return view

    async def set_invites(
        self, actor: StaffPrincipal, meeting_id: int, invite: InviteSpec
    ) -> MeetingView:
        """Change who is invited. On a live meeting, newly invited sites are added and told;
        sites no longer invited are removed (their presence interval closes)."""
        if invite.is_empty:
            raise Invalid("invite someone: the whole country, units, sites or a saved group")
        now = self.now()
        added: list[int] = []
        removed: list[int] = []
        async with self.lock(meeting_id):
            try:
                async with self.db.session() as s:
                    m = await self.load(s, meeting_id)
                    self.require_control(actor, m, "change the invitations")
                    if m.state == "ended":
                        raise Conflict(f"meeting {meeting_id} has ended", code="ended")
                    new_ids = await resolve_sites(s, invite)
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
                        await self._check_busy(s, added, meeting_id)
                        await self._add_participants(s, meeting_id, added)
                        await self._remove_participants(s, meeting_id, removed, now)
                    m.invite_spec = invite.to_json()
                    m.invited_count = len(new_ids)
                    await record_audit(
                        s,
                        actor,
                        "meeting.invites",
                        meeting_id,
                        details={
                            "invite": invite.to_json(),
                            "before": before,
                            "after": len(new_ids),
                            "added": len(added),
                            "removed": len(removed),
                        },
                        at=now,
                    )
                    view = MeetingView.of(m)
            except IntegrityError as exc:
                raise Conflict(
                    "a newly invited site joined another live meeting meanwhile"
                ) from exc
            self._remember(view)
            if view.state == "live":
                for sid in added:
                    self.live_site_meeting[sid] = meeting_id
                for sid in removed:
                    if self.live_site_meeting.get(sid) == meeting_id:
                        del self.live_site_meeting[sid]
                    self.attendance.forget(meeting_id, sid)
                if added:
                    await self.hub.follow(self.stream(meeting_id), added)
                    await self.hub.send(
                        added,
                        "meeting.started",
                        {"meeting": view.site_dict()},
                        msg_id=f"meeting:{meeting_id}:started",
                    )
                if removed:
                    await self.hub.unfollow(self.stream(meeting_id), removed)
                    await self.hub.send(removed, "meeting.removed", {"meeting_id": meeting_id})
        for sid in removed:  # outside the meeting's lock: a revoke takes it
            await self.floor.speaker_left(meeting_id, sid)
        await self._staff_event("meeting.updated", view)
        return view

    async def _check_busy(self, s: AsyncSession, site_ids: Sequence[int], meeting_id: int) -> None:
        """Refuse when any of `site_ids` is already in another live meeting.

        Checked against the in-memory mirror of ``meeting_live_sites``; the table's
        primary key still refuses a race (IntegrityError at commit → Conflict).
        """
        live = self.live_site_meeting
        busy = [(sid, live[sid]) for sid in site_ids if sid in live and live[sid] != meeting_id]
        if busy:
            infos = await self.site_infos([sid for sid, _ in busy[:3]])
            names = ", ".join(
                f"{infos[sid].code if sid in infos else sid} (meeting {mid})"
                for sid, mid in busy[:3]
            )
            more = f" and {len(busy) - 3} more" if len(busy) > 3 else ""
            raise Conflict(
                f"{len(busy)} invited site(s) are already in another live meeting: {names}{more}",
                code="site_busy",
            )

    async def _add_participants(
        self, s: AsyncSession, meeting_id: int, site_ids: Sequence[int]
    ) -> None:
        if not site_ids:
            return
        # One bulk read fills the site cache (names for the floor and roll call too).
        infos = await self.site_infos(site_ids)
        provinces = {sid: info.province_id for sid, info in infos.items()}
        await s.execute(
            insert(MeetingParticipant),
            [
                {
                    "meeting_id": meeting_id,
                    "site_id": sid,
                    "province_id": provinces.get(sid),
                    "wants_in": False,
                }
                for sid in site_ids
            ],
        )
        await s.execute(
            insert(MeetingLiveSite),
            [{"site_id": sid, "meeting_id": meeting_id} for sid in site_ids],
        )

    async def _remove_participants(
        self, s: AsyncSession, meeting_id: int, site_ids: Sequence[int], now: datetime
    ) -> None:
        for start in range(0, len(site_ids), 500):
            chunk = site_ids[start : start + 500]
            await s.execute(
                update(MeetingAttendance)
                .where(
                    MeetingAttendance.meeting_id == meeting_id,
                    MeetingAttendance.site_id.in_(chunk),
                    MeetingAttendance.left_at.is_(None),
                )
                .values(left_at=now, left_reason="uninvited")
            )
            await s.execute(
                update(MeetingHand)
                .where(
                    MeetingHand.meeting_id == meeting_id,
                    MeetingHand.site_id.in_(chunk),
                    MeetingHand.closed_at.is_(None),
                )
                .values(closed_at=now, outcome="dismissed")
            )
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

    async def start_meeting(self, actor: StaffPrincipal, meeting_id: int) -> MeetingView:
        """Resolve and store the invited sites, go live, make them follow the meeting
        stream and announce the start to every invited site at once."""
        now = self.now()
        async with self.lock(meeting_id):
            try:
                async with self.db.session() as s:
                    m = await self.load(s, meeting_id)
                    self.require_control(actor, m, "start this meeting")
                    if m.state != "scheduled":
                        raise Conflict(f"meeting {meeting_id} is already {m.state}", code=m.state)
                    site_ids = await resolve_sites(s, InviteSpec.from_json(m.invite_spec))
                    if not site_ids:
                        raise Invalid("the invitation resolves to no site; change it first")
                    await self._check_busy(s, site_ids, meeting_id)
                    await self._add_participants(s, meeting_id, site_ids)
                    m.state = "live"
                    m.started_at = now
                    m.invited_count = len(site_ids)
                    if m.scheduled_end is not None and m.scheduled_end > now:
                        m.ends_at = m.scheduled_end
                    m.floor_version += 1
                    await record_audit(
                        s,
                        actor,
                        "meeting.start",
                        meeting_id,
                        details={"invited": len(site_ids)},
                        at=now,
                    )
                    view = MeetingView.of(m)
            except IntegrityError as exc:
                raise Conflict(
                    "an invited site joined another live meeting meanwhile; try again",
                    code="site_busy",
                ) from exc
            self._remember(view)
            for sid in site_ids:
                self.live_site_meeting[sid] = meeting_id
            await self.site_infos(site_ids)  # one bulk read now, not one per joining site
            await self.hub.follow(self.stream(meeting_id), site_ids)
            await self.publish(
                meeting_id, "meeting.started", {"meeting": view.site_dict()}, staff=False
            )
            await self._staff_event("meeting.started", view)
            await self.media_call("start_program", meeting_id)
            await self.floor.notify(
                FloorDecision(
                    meeting_id,
                    "start",
                    (),
                    view.muted_all,
                    view.unmute_allowed,
                    view.floor_version,
                    now,
                    actor.username,
                )
            )
        return view

    async def extend_meeting(
        self, actor: StaffPrincipal, meeting_id: int, minutes: int
    ) -> MeetingView:
        """Move the planned end of a live meeting later (it never ends by itself)."""
        if not 1 <= minutes <= MAX_EXTEND_MIN:
            raise Invalid(f"extend by 1 to {MAX_EXTEND_MIN} minutes")
        now = self.now()
        async with self.lock(meeting_id):
            async with self.db.session() as s:
                m = await self.load(s, meeting_id)
                self.require_control(actor, m, "extend this meeting")
                if m.state != "live":
                    raise Conflict(f"only a live meeting can be extended (it is {m.state})")
                base = m.ends_at if m.ends_at is not None and m.ends_at > now else now
                m.ends_at = base + timedelta(minutes=minutes)
                await record_audit(
                    s,
                    actor,
                    "meeting.extend",
                    meeting_id,
                    details={"minutes": minutes, "ends_at": m.ends_at.isoformat()},
                    at=now,
                )
                view = MeetingView.of(m)
            self._remember(view)
            await self.publish(
                meeting_id,
                "meeting.extended",
                {
                    "meeting_id": meeting_id,
                    "ends_at": _iso(view.ends_at),
                    "meeting": view.site_dict(),
                },
            )
        return view

    async def end_meeting(self, actor: StaffPrincipal, meeting_id: int) -> MeetingView:
        """End a live meeting: close every presence interval, hand and grant; free its sites."""
        now = self.now()
        async with self.lock(meeting_id):
            async with self.db.session() as s:
                m = await self.load(s, meeting_id)
                self.require_control(actor, m, "end this meeting")
                if m.state != "live":
                    raise Conflict(f"only a live meeting can be ended (it is {m.state})")
                await s.execute(
                    update(MeetingAttendance)
                    .where(
                        MeetingAttendance.meeting_id == meeting_id,
                        MeetingAttendance.left_at.is_(None),
                    )
                    .values(left_at=now, left_reason="ended")
                )
                await s.execute(
                    update(MeetingHand)
                    .where(MeetingHand.meeting_id == meeting_id, MeetingHand.closed_at.is_(None))
                    .values(closed_at=now, outcome="ended")
                )
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
                await s.execute(
                    delete(MeetingLiveSite).where(MeetingLiveSite.meeting_id == meeting_id)
                )
                m.state = "ended"
                m.ended_at = now
                m.floor_version += 1
                await record_audit(s, actor, "meeting.end", meeting_id, at=now)
                view = MeetingView.of(m)
            self._remember(view)
            for sid in [k for k, v in self.live_site_meeting.items() if v == meeting_id]:
                del self.live_site_meeting[sid]
            self.attendance.forget_meeting(meeting_id)
            await self.publish(
                meeting_id, "meeting.ended", {"meeting": view.site_dict()}, staff=False
            )
            await self._staff_event("meeting.ended", view)
            await self.hub.unfollow(self.stream(meeting_id))
            await self.media_call("stop_program", meeting_id)
            await self.floor.notify(
                FloorDecision(
                    meeting_id,
                    "end",
                    (),
                    view.muted_all,
                    view.unmute_allowed,
                    view.floor_version,
                    now,
                    actor.username,
                )
            )
        return view

    # --- reminders --------------------------------------------------------------------

    async def run_due_reminders(self) -> int:
        """Remind invited sites of every scheduled meeting whose reminder time has come.

        Sent once per meeting (``reminder_sent_at``) as a durable per-site message with a
        stable id, so a crash between sending and marking cannot remind twice on resume.
        Returns the number of meetings reminded.
        """
        now = self.now()
        async with self.db.session() as s:
            due = (
                await s.scalars(
                    select(Meeting).where(
                        Meeting.state == "scheduled",
                        Meeting.reminder_sent_at.is_(None),
                        Meeting.scheduled_start.is_not(None),
                    )
                )
            ).all()
        count = 0
        for m in due:
            assert m.scheduled_start is not None
            if m.scheduled_start - timedelta(seconds=m.reminder_lead_s) > now:
                continue
            async with self.db.session() as s:
                site_ids = await resolve_sites(s, InviteSpec.from_json(m.invite_spec))
            await self.hub.send(
                site_ids,
                "meeting.reminder",
                {"meeting": MeetingView.of(m).site_dict()},
                msg_id=f"meeting:{m.id}:reminder",
            )
            async with self.db.session() as s:
                row = await self.load(s, m.id)
                row.reminder_sent_at = now
                await record_audit(
                    s, "system", "meeting.remind", m.id, details={"sites": len(site_ids)}, at=now
                )
            count += 1
        return count

    async def _reminder_loop(self) -> None:
        while True:
            try:
                await self.run_due_reminders()
            except Exception:
                log.exception("meeting reminders failed")
            await asyncio.sleep(self.reminder_poll_s)
