"""The meetings' shared read side: rows loaded for a decision, live state mirrored in memory.

Every meetings peer loads a meeting, checks participation and serialises its decisions
through one `MeetingStore`. It also mirrors what thousands of sites ask at once in a
national meeting (which live meeting holds a site, how a live meeting looks to a site),
so a mass join needs no database read; the mirrors are rebuilt from the store at start
(docs/meetings.md, "Restarts").
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from diemcau.actors import Actor
from diemcau.directory.sites import SiteDirectory
from diemcau.errors import Conflict, Forbidden, NotFound
from diemcau.meetings.access import require_control, require_site
from diemcau.meetings.models import Meeting, MeetingFloor, MeetingLiveSite, MeetingParticipant
from diemcau.meetings.views import MeetingView
from diemcau.store import Database

__all__ = ["MeetingStore"]


class MeetingStore:
    """Meetings as stored, plus the in-memory mirrors of live ones.

    Args:
        db: the store.
        sites: the directory's read model of sites.
        clock: wall clock in seconds (tests pass a fake one).
    """

    def __init__(
        self, db: Database, sites: SiteDirectory, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.db = db
        self.sites = sites
        self.clock = clock
        self._locks: dict[int, asyncio.Lock] = {}
        # site id -> the live meeting holding it (mirror of meeting_live_sites).
        self.live_site_meeting: dict[int, int] = {}
        # Live meetings as sites see them, so thousands of joins need no database read.
        self._site_views: dict[int, MeetingView] = {}

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def lock(self, meeting_id: int) -> asyncio.Lock:
        """Serialises lifecycle and floor decisions of one meeting (one process owns them)."""
        lk = self._locks.get(meeting_id)
        if lk is None:
            lk = self._locks[meeting_id] = asyncio.Lock()
        return lk

    async def reload(self) -> None:
        """Rebuild the mirror of which live meeting holds which site (at start)."""
        async with self.db.session() as s:
            rows = await s.execute(select(MeetingLiveSite.site_id, MeetingLiveSite.meeting_id))
            self.live_site_meeting = {site: meeting for site, meeting in rows}

    # --- the live-site mirror ---------------------------------------------------------

    def hold(self, meeting_id: int, site_ids: Iterable[int]) -> None:
        """Note that these sites are now in this live meeting (after the commit)."""
        for sid in site_ids:
            self.live_site_meeting[sid] = meeting_id

    def release(self, meeting_id: int, site_ids: Iterable[int] | None = None) -> None:
        """Note that these sites (every site if None) left this live meeting."""
        live = self.live_site_meeting
        ids = [k for k, v in live.items() if v == meeting_id] if site_ids is None else site_ids
        for sid in ids:
            if live.get(sid) == meeting_id:
                del live[sid]

    def remember(self, view: MeetingView) -> MeetingView:
        """Keep a live meeting's latest view for its sites; forget it once not live."""
        if view.state == "live":
            self._site_views[view.id] = view
        else:
            self._site_views.pop(view.id, None)
        return view

    # --- reads ------------------------------------------------------------------------

    async def load(self, s: AsyncSession, meeting_id: int) -> Meeting:
        m = await s.get(Meeting, meeting_id)
        if m is None:
            raise NotFound(f"meeting {meeting_id} not found", code="no_meeting")
        return m

    async def load_to_run(
        self, s: AsyncSession, actor: Actor, meeting_id: int, what: str
    ) -> Meeting:
        """`load` for a decision only the meeting's chair, a delegate or an admin makes."""
        m = await self.load(s, meeting_id)
        require_control(actor, m, what)
        return m

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

    async def speaker_ids(self, s: AsyncSession, meeting_id: int) -> list[int]:
        """Sites holding the floor of a meeting, in the order they got it."""
        rows = await s.scalars(
            select(MeetingFloor.site_id)
            .where(MeetingFloor.meeting_id == meeting_id, MeetingFloor.revoked_at.is_(None))
            .order_by(MeetingFloor.id)
        )
        return list(rows.all())

    async def site_meeting(self, site: Actor, meeting_id: int | None) -> MeetingView:
        """The meeting a site addresses: the given one, or the live one holding it.

        Raises Forbidden when the site is not invited, so an uninvited site learns
        nothing but that (and when the actor is not a site at all).
        """
        site_id = require_site(site, "take part in a meeting")
        live = self.live_site_meeting.get(site_id)
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
            if m is None or not await self.is_participant(s, meeting_id, site_id):
                if m is not None and m.state == "scheduled":
                    raise Conflict(f"meeting {meeting_id} has not started", code="not_live")
                raise Forbidden(
                    f"site {site.name} is not invited to meeting {meeting_id}", code="not_invited"
                )
            return self.remember(MeetingView.of(m))

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
        infos = await self.sites.by_ids(sid for _, sid in rows)
        out: dict[int, list[str]] = {mid: [] for mid in live}
        for mid, sid in rows:
            if sid in infos:
                out[mid].append(infos[sid].code)
        return out
