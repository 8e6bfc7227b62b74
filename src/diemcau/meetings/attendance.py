"""Presence in meetings: intervals opened and closed from sessions, never typed by hand.

A site is present in a live meeting between its "join" and its "leave", while its
session is up. Each stretch of presence is a stored interval, opened on join (or on
coming back online after a drop, if the site had not left) and closed on leave, on
going offline, at the meeting's end, or at a server restart. Roll call (`roll_call.py`)
computes live counts and the after-meeting report from those intervals, so they stay
right across leave/rejoin and restarts.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, update

from diemcau.actors import Actor
from diemcau.directory.sites import SiteDirectory
from diemcau.errors import Conflict
from diemcau.meetings.models import Meeting, MeetingAttendance, MeetingParticipant
from diemcau.meetings.ports import Hub, SiteChange
from diemcau.meetings.publisher import Publisher
from diemcau.meetings.store import MeetingStore
from diemcau.meetings.views import MeetingView
from diemcau.meetings.writer import AttendanceOp, AttendanceWriter
from diemcau.tasks import cancel_and_wait, run_to_end

__all__ = ["Attendance"]

log = logging.getLogger(__name__)


@dataclass(eq=False, repr=False)
class Attendance:
    """Who is present in every live meeting, kept in the store and mirrored in memory.

    Args:
        store: the meetings' shared read side (clock, live-site mirror, site views).
        hub: the presence hub (whether a site's session is up).
        publisher: tells staff of every presence change.
        sites: the directory's read model (a site's code and province in the events).
    """

    store: MeetingStore
    hub: Hub
    publisher: Publisher
    sites: SiteDirectory
    # (meeting id, site id) -> id of the open interval; mirror of the store.
    _open: dict[tuple[int, int], int] = field(init=False, default_factory=dict)
    # (meeting id, site id) of sites that joined and did not leave.
    _wants: set[tuple[int, int]] = field(init=False, default_factory=set)
    _site_locks: dict[int, asyncio.Lock] = field(init=False, default_factory=dict)
    writer: AttendanceWriter = field(init=False)
    _stopped: bool = field(init=False, default=False)
    # Sites whose presence could not be applied (the store refused it): applied
    # again every `retry_s` until it holds, so roll call always catches up.
    retry_s: float = field(init=False, default=1.0)
    _retry: set[tuple[int, int]] = field(init=False, default_factory=set)
    _retry_task: asyncio.Task[None] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.writer = AttendanceWriter(self.store.db)

    def _lock(self, site_id: int) -> asyncio.Lock:
        lk = self._site_locks.get(site_id)
        if lk is None:
            lk = self._site_locks[site_id] = asyncio.Lock()
        return lk

    @property
    def open_count(self) -> int:
        """Open presence intervals (sites present in live meetings now)."""
        return len(self._open)

    def is_present(self, meeting_id: int, site_id: int) -> bool:
        return (meeting_id, site_id) in self._open

    def forget(self, meeting_id: int, site_id: int) -> None:
        self._open.pop((meeting_id, site_id), None)
        self._wants.discard((meeting_id, site_id))

    def forget_meeting(self, meeting_id: int) -> None:
        for key in [k for k in self._open if k[0] == meeting_id]:
            del self._open[key]
        self._wants = {k for k in self._wants if k[0] != meeting_id}

    async def reconcile(self, last_alive: datetime | None = None) -> None:
        """After a (re)start: rebuild the mirror and close intervals of sites now offline.

        Whoever was present when the server stopped is not present now unless its
        session is up again; its interval ends (reason ``server_restart``) at
        `last_alive`, the last moment the previous run was known to be up (after a
        crash; never before the interval began), else now, and a new one opens when its
        session comes back, because it never left. After a crash every open interval
        ends at the mark, even of a site already back: it was away meanwhile. So
        attendance shows the outage.
        """
        self._stopped = False
        now = self.store.now()
        until = now if last_alive is None else min(now, last_alive)
        async with self.store.db.session() as s:
            live = select(Meeting.id).where(Meeting.state == "live")
            opened = (
                await s.execute(
                    select(
                        MeetingAttendance.id,
                        MeetingAttendance.meeting_id,
                        MeetingAttendance.site_id,
                    ).where(
                        MeetingAttendance.left_at.is_(None),
                        MeetingAttendance.meeting_id.in_(live),
                    )
                )
            ).all()
            wants = (
                await s.execute(
                    select(MeetingParticipant.meeting_id, MeetingParticipant.site_id).where(
                        MeetingParticipant.wants_in.is_(True),
                        MeetingParticipant.meeting_id.in_(live),
                    )
                )
            ).all()
            # After a crash (a last alive mark) even a site already back was away
            # meanwhile: every open interval ends at the mark, a new one opens below.
            stale = [
                iid
                for iid, _, sid in opened
                if last_alive is not None or not self.hub.is_online(sid)
            ]
            for start in range(0, len(stale), 500):
                chunk = MeetingAttendance.id.in_(stale[start : start + 500])
                await s.execute(
                    update(MeetingAttendance)
                    .where(chunk, MeetingAttendance.joined_at <= until)
                    .values(left_at=until, left_reason="server_restart")
                )
                # Opened after the last sign of life: it never held.
                await s.execute(
                    update(MeetingAttendance)
                    .where(chunk, MeetingAttendance.left_at.is_(None))
                    .values(left_at=MeetingAttendance.joined_at, left_reason="server_restart")
                )
        stale_set = set(stale)
        self._open = {(mid, sid): iid for iid, mid, sid in opened if iid not in stale_set}
        self._wants = {(mid, sid) for mid, sid in wants}
        for mid, sid in sorted(self._wants):
            if (mid, sid) not in self._open and self.hub.is_online(sid):
                async with self._lock(sid):
                    await self._open_interval(mid, sid)

    async def _open_interval(
        self, meeting_id: int, site_id: int, wants: bool | None = None
    ) -> bool:
        """Open an interval unless one is open (call under the site's lock)."""
        key = (meeting_id, site_id)
        if key in self._open:
            if wants is not None:
                await self._set_wants(meeting_id, site_id, wants)
            return False
        op = AttendanceOp(meeting_id, site_id, self.store.now(), open=True, wants=wants)
        await self._store(key, op)
        await self._event(meeting_id, site_id, "present")
        return True

    async def _close_interval(
        self, meeting_id: int, site_id: int, reason: str, wants: bool | None = None
    ) -> bool:
        """Close the open interval, if any (call under the site's lock)."""
        key = (meeting_id, site_id)
        iid = self._open.get(key)
        if iid is None:
            if wants is not None:
                await self._set_wants(meeting_id, site_id, wants)
            return False
        op = AttendanceOp(
            meeting_id,
            site_id,
            self.store.now(),
            open=False,
            wants=wants,
            interval_id=iid,
            reason=reason,
        )
        await self._store(key, op)
        await self._event(meeting_id, site_id, "left", reason=reason)
        return True

    async def _store(self, key: tuple[int, int], op: AttendanceOp) -> None:
        """Write `op`, then the mirror, as one step a cancel cannot split (under the lock).

        A site's session closing cancels its requests in flight, a join among them: its
        write was queued and still commits, but the mirror was left behind, so the store
        kept an open interval nothing would close (a present site that is gone, never
        closed at a stop either). The caller's cancel is raised once both are done.
        """

        async def write() -> None:
            iid = await self.writer.submit(op)
            if op.open:
                assert iid is not None
                self._open[key] = iid
            elif op.interval_id is not None:
                self._open.pop(key, None)
            self._note_wants(key, op.wants)

        await run_to_end(write())

    def _note_wants(self, key: tuple[int, int], wants: bool | None) -> None:
        if wants is True:
            self._wants.add(key)
        elif wants is False:
            self._wants.discard(key)

    async def _event(
        self, meeting_id: int, site_id: int, status: str, reason: str | None = None
    ) -> None:
        info = await self.sites.get(site_id)
        province_id = info.province_id if info else None
        body: dict[str, object] = {
            "meeting_id": meeting_id,
            "site_id": site_id,
            "code": info.code if info else "",
            "province_id": province_id,
            "status": status,
        }
        if reason is not None:
            body["reason"] = reason
        await self.publisher.staff_event("attendance.changed", body, province_id=province_id)

    async def _set_wants(self, meeting_id: int, site_id: int, wants: bool) -> None:
        op = AttendanceOp(meeting_id, site_id, self.store.now(), open=False, wants=wants)
        await self._store((meeting_id, site_id), op)

    # --- site actions -----------------------------------------------------------------

    async def join(self, site: Actor, meeting_id: int | None = None) -> MeetingView:
        """An invited site enters a live meeting (idempotent). Uninvited sites are refused.

        Presence means a live site session: a site whose session is not up (a join
        over HTTP alone) is refused, or it would be counted present, and could be
        given the floor, without ever connecting (docs/security.md).
        """
        view = await self.store.site_meeting(site, meeting_id)
        if view.state != "live":
            raise Conflict(f"meeting {view.id} is {view.state}, not live", code="not_live")
        site_id = site.site_id
        assert site_id is not None  # site_meeting admits site actors only
        key = (view.id, site_id)
        async with self._lock(site_id):
            if not self.hub.is_online(site_id):
                raise Conflict(
                    "this site has no live session: open the site terminal (its session) "
                    "before joining",
                    code="no_session",
                )
            if key not in self._open or key not in self._wants:
                await self._open_interval(view.id, site_id, wants=True)
        return view

    async def leave(self, site: Actor, meeting_id: int | None = None) -> MeetingView:
        """A site leaves on purpose: it is not rejoined when its session drops and returns.

        Only its presence; `SiteActions.leave` also closes its hand and takes the floor
        back from it.
        """
        view = await self.store.site_meeting(site, meeting_id)
        site_id = site.site_id
        assert site_id is not None  # site_meeting admits site actors only
        key = (view.id, site_id)
        async with self._lock(site_id):
            if key in self._open or key in self._wants:
                await self._close_interval(view.id, site_id, "leave", wants=False)
        return view

    async def close_all(self, reason: str) -> int:
        """Close every open interval at once (the service is stopping); returns how many.

        From here on presence transitions are ignored: the sessions are being closed
        by the server itself, which says nothing about the sites.
        """
        self._stopped = True
        for lk in list(self._site_locks.values()):
            async with lk:  # let in-flight joins and leaves finish first
                pass
        # Idle now (stopped, and any pass in flight went through the locks above).
        await cancel_and_wait(self._retry_task)
        self._retry.clear()
        ids = list(self._open.values())
        now = self.store.now()
        async with self.store.db.session() as s:
            for start in range(0, len(ids), 500):
                await s.execute(
                    update(MeetingAttendance)
                    .where(
                        MeetingAttendance.id.in_(ids[start : start + 500]),
                        MeetingAttendance.left_at.is_(None),
                    )
                    .values(left_at=now, left_reason=reason)
                )
        self._open.clear()
        return len(ids)

    async def on_presence(self, change: SiteChange) -> None:
        """Hub listener: a session drop closes the interval; coming back reopens it."""
        site_id = change.site_id
        if self._stopped:
            return
        meeting_id = self.store.live_site_meeting.get(site_id)
        if meeting_id is None:
            return
        await self._follow_presence((meeting_id, site_id))

    async def _follow_presence(self, key: tuple[int, int], *, retrying: bool = False) -> bool:
        """Make the site's interval match its session now; if the store refuses, again later.

        A presence change was applied once, when it happened: if that write failed (a
        mass drop and reconnect had the store answer "database is locked" for a while),
        the mirror and the store kept the old state while the session had moved on, and
        no later event corrected it, so a site online and joined stayed absent for the
        rest of the meeting (issue 16: ``present 0/3355`` after a reconnect wave). Failed
        sites are kept and applied again until it holds.

        Everything is decided under the site's lock, after any join or leave in flight:
        deciding before it (an early "never joined" check did) let a join whose write
        was pending when the session dropped open an interval for an offline site.
        """
        meeting_id, site_id = key
        try:
            async with self._lock(site_id):
                if self._stopped or self.store.live_site_meeting.get(site_id) != meeting_id:
                    return True  # stopping, or the meeting ended: nothing to follow
                # Listeners run as concurrent tasks, so transitions may be handled out of
                # order: act on the hub's state now, not on the (maybe stale) event.
                online = self.hub.is_online(site_id)
                if online and key in self._wants and key not in self._open:
                    await self._open_interval(meeting_id, site_id)
                elif not online and key in self._open:
                    await self._close_interval(meeting_id, site_id, "offline")
        except Exception as exc:
            if not retrying:
                log.warning(
                    "attendance of site %s in meeting %s not stored (%r); will retry every %g s",
                    site_id,
                    meeting_id,
                    exc,
                    self.retry_s,
                )
            self._retry.add(key)
            if self._retry_task is None or self._retry_task.done():
                self._retry_task = asyncio.create_task(self._retry_loop())
            return False
        return True

    async def _retry_loop(self) -> None:
        while self._retry and not self._stopped:
            await asyncio.sleep(self.retry_s)
            keys, self._retry = sorted(self._retry), set()
            # Together, so the writer commits them in one transaction.
            done = await asyncio.gather(*(self._follow_presence(k, retrying=True) for k in keys))
            if not all(done):
                log.warning("attendance of %d sites still not stored; retrying", done.count(False))
