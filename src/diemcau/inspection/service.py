"""`InspectionService`: look at any site now, call it, and record whether it answered.

The live side of inspections. An authorised inspector asks to see a site; the site's
terminal, on standby, is told over its control session (``inspect.watch``) and starts
publishing to its relay at once, while the inspector's console subscribes. The site
says when it publishes (``inspect.publishing``): the inspection is then *answered*. A
site with no terminal open, or that does not publish within `answer_timeout_s`, is
recorded as *not answered* — a finding, not an error. The inspector may turn the look
into a two-way call (its camera and microphone to that one site, never into a
program) and ends it; a console that stops renewing its lease (`lease_s`) ends its
inspections by itself, so a closed tab never leaves a site on camera. The video wall
takes the same path with leases of its own (`WallDesk`).

State lives in memory (who looks at which site) and in the store (every inspection,
with its audit rows): the store is written first, then the site and the staff are
told (docs/architecture.md). docs/inspection.md describes the whole flow.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from sqlalchemy import select

from diemcau.accounts.service import SitePrincipal
from diemcau.actors import Actor
from diemcau.directory.sites import SiteDirectory
from diemcau.errors import Conflict, Invalid, NotFound
from diemcau.inspection.access import (
    check_inspectable,
    check_may_act_on,
    check_may_see,
    require_inspector,
)
from diemcau.inspection.calls import Calls
from diemcau.inspection.live import SYSTEM, LiveInspection
from diemcau.inspection.notices import STAFF_EVENT, Notices
from diemcau.inspection.ports import (
    FloorSites,
    Grant,
    InspectionMedia,
    LiveMeetingOf,
    RecordingHook,
    SiteControl,
)
from diemcau.inspection.records import InspectionFilter, InspectionRecords, Opening, no_inspection
from diemcau.inspection.rounds import Rounds
from diemcau.inspection.views import InspectionView
from diemcau.inspection.wall import WallDesk, WallPage
from diemcau.inspection.watch import Looker, WatchBoard
from diemcau.records import JsonObject, Record
from diemcau.store import Database
from diemcau.store.models import StaffUser
from diemcau.tasks import cancel_and_wait

__all__ = ["InspectionService", "Started", "STAFF_EVENT"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Started(Record):
    """An inspection just asked for, and the inspector's grant (None: not answered)."""

    inspection: InspectionView
    grant: Grant | None


class InspectionService:
    """Open inspections, their calls and leases; rounds (`rounds`) and the wall (`wall`).

    Args:
        db: the store.
        sites: the directory's read model of sites.
        presence: tells sites, hears their requests, says who is connected.
        media: the grants (raises ``no_media`` while no media plane runs).
        live_meeting_of: the live meeting a site is in (recorded with the inspection).
        floor_sites: the floor of every live meeting (a speaker is not called).
        recording: offered every answered inspection (a meeting's policy decides).
        clock: wall clock in seconds.
        answer_timeout_s: how long a standby site has to start publishing.
        lease_s: how long an inspection or a wall page lives without renewal.
        tick_s: how often deadlines and leases are checked.
        max_open: open inspections one inspector may hold at once.
    """

    def __init__(
        self,
        db: Database,
        sites: SiteDirectory,
        *,
        presence: SiteControl,
        media: InspectionMedia,
        live_meeting_of: LiveMeetingOf | None = None,
        floor_sites: FloorSites | None = None,
        recording: RecordingHook | None = None,
        clock: Callable[[], float] = time.time,
        answer_timeout_s: float = 30.0,
        lease_s: float = 30.0,
        tick_s: float = 0.25,
        max_open: int = 6,
    ) -> None:
        self.db = db
        self.sites = sites
        self.presence = presence
        self.media = media
        self.recording = recording
        self._meeting_of = live_meeting_of
        self.answer_timeout_s = answer_timeout_s
        self.lease_s = lease_s
        self.tick_s = tick_s
        self.max_open = max_open
        self.records = InspectionRecords(db, clock)
        self.board = WatchBoard(int(clock() * 1000))
        self.notices = Notices(presence, self.board)
        self.calls = Calls(self.records, media, self.board, self.notices, floor_sites)
        self.rounds = Rounds(db, sites, clock)
        self.wall = WallDesk(db, sites, media, self.board, self.notices.tell, lease_s=lease_s)
        self._live: dict[int, LiveInspection] = {}
        self._task: asyncio.Task[None] | None = None

    # --- lifecycle --------------------------------------------------------------------

    def register(self) -> None:
        """Answer the sites' inspection requests on their control sessions."""
        self.presence.on_message("inspect.publishing", self._on_publishing)
        self.presence.on_message("inspect.state", self._on_state)

    async def start(self) -> None:
        """Close what a stop or crash left open, then watch deadlines and leases."""
        closed = await self.records.close_all_open("server_restart")
        if closed:
            log.info("inspections left open by the last run closed: %d", len(closed))
        self._task = asyncio.create_task(self._tick_forever(), name="inspection-deadlines")

    async def stop(self) -> None:
        """End every open inspection and wall look (the sites stop publishing)."""
        await cancel_and_wait(self._task)
        self._task = None
        for live in list(self._live.values()):
            await self._close(live, SYSTEM, "ended", "server_stop")
        await self.wall.release_all()

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            try:
                await self.expire()
            except Exception:
                log.exception("inspection deadlines failed")

    async def expire(self) -> None:
        """Not answered in time → a finding; a console gone silent → its inspection ends."""
        now = self._now()
        for live in list(self._live.values()):
            if live.view.state == "waiting" and now >= live.deadline:
                await self._close(live, SYSTEM, "not_answered", "no_publish")
            elif now >= live.lease_until:
                await self._close(live, SYSTEM, "ended", "inspector_gone")
        await self.wall.expire(now)

    # --- inspections ------------------------------------------------------------------

    async def inspect(
        self, actor: Actor, site_code: str, round_item_id: int | None = None
    ) -> Started:
        """Look at a site now: tell its terminal to publish, hand the console its grant.

        Raises:
            NotFound: ``unknown_site``, also for a site outside the officer's province
                (the same answer: no telling which codes exist elsewhere); ``no_media``
                (no media plane runs).
            Forbidden: a site, a role that may not inspect.
            Invalid: ``not_inspectable`` (the central site).
            Conflict: ``too_many`` open inspections; ``no_media_grant``; a closed round.
        """
        require_inspector(actor)
        site = await self.sites.find_visible(actor, site_code)
        if site is None:
            raise NotFound(f"no site {site_code!r} in your reach", code="unknown_site")
        check_inspectable(site)
        round_id = None
        if round_item_id is not None:
            item = await self.rounds.item_for_inspection(actor, round_item_id)
            if item.site_id != site.id:
                raise Invalid(f"round item {round_item_id} is another site", code="wrong_item")
            round_id = item.round_id
        for lv in self._live.values():
            if lv.actor.name == actor.name and lv.site.id == site.id:
                # Asked again (a second click, a reloaded console): the same inspection.
                lv.lease_until = self._now() + self.lease_s
                return Started(lv.view, await self.media.watch_grant(site.code))
        if sum(1 for lv in self._live.values() if lv.actor.name == actor.name) >= self.max_open:
            raise Conflict(
                f"you have {self.max_open} inspections open: end one first", code="too_many"
            )
        online = self.presence.is_online(site.id)
        # The grant first: a media fault is not the site's, so it records nothing.
        grant = await self.media.watch_grant(site.code) if online else None
        name = await self._display_name(actor)
        meeting = self._meeting_of(site.id) if self._meeting_of is not None else None
        view = await self.records.open(
            actor, Opening(site, name, meeting, round_id, round_item_id), online=online
        )
        if view.state != "waiting":
            await self._staff_event(view)
            return Started(view, None)
        now = self._now()
        looker = Looker(
            "inspection", str(view.id), name, actor.role, view.requested_at, False, view.id
        )
        self._live[view.id] = LiveInspection(
            view, actor, site, looker, now + self.answer_timeout_s, now + self.lease_s
        )
        self.board.put(site.id, looker)
        await self._tell(site.id)
        await self._staff_event(view)
        return Started(view, grant)

    async def get(self, actor: Actor, inspection_id: int) -> InspectionView:
        live = self._live.get(inspection_id)
        view = live.view if live is not None else await self.records.get(inspection_id)
        check_may_see(actor, view.province_id, no_inspection(inspection_id))
        return view

    async def keepalive(self, actor: Actor, inspection_id: int) -> Started:
        """The console is still watching: renew the lease, with a fresh grant (its room
        token is short-lived); a closed inspection is answered as it is, without one."""
        live = await self._owned(actor, inspection_id)
        if live is None:
            return Started(await self.records.get(inspection_id), None)
        live.lease_until = self._now() + self.lease_s
        return Started(live.view, await self.media.watch_grant(live.site.code))

    async def end(self, actor: Actor, inspection_id: int) -> InspectionView:
        """End an inspection (idempotent): the site stops publishing unless others look."""
        live = await self._owned(actor, inspection_id)
        if live is None:
            return await self.records.get(inspection_id)
        return await self._close(live, actor, "ended", "ended") or live.view

    async def list(self, actor: Actor, f: InspectionFilter) -> list[InspectionView]:
        """Inspections, newest first; a province officer sees its province's only."""
        require_inspector(actor, "see an inspection")
        return await self.records.list(replace(f, province_id=actor.scope(f.province_id)))

    async def _owned(self, actor: Actor, inspection_id: int) -> LiveInspection | None:
        live = self._live.get(inspection_id)
        view = live.view if live is not None else await self.records.get(inspection_id)
        check_may_act_on(actor, view.inspector, view.province_id, no_inspection(inspection_id))
        return live

    async def _close(
        self, live: LiveInspection, actor: Actor, state: str, reason: str
    ) -> InspectionView | None:
        """Record the end first, then free the site (its call room too) and tell everyone."""
        if self._live.pop(live.view.id, None) is None:
            return None  # closed meanwhile
        view = await self.records.close(actor, live.view.id, state, reason)
        if live.view.in_call:
            await self.calls.close_room(live.site.code)
        self.board.drop(live.site.id, "inspection", str(live.view.id))
        await self._tell(live.site.id)
        if view is None:
            return None
        if view.recorded and self.recording is not None:
            try:
                await self.recording.inspection_ended(view.id, view.meeting_id)
            except Exception:
                log.exception("recording: end of inspection %d", view.id)
        await self._staff_event(view)
        return view

    # --- calls ------------------------------------------------------------------------

    async def start_call(self, actor: Actor, inspection_id: int) -> Started:
        """Turn an answered inspection into a two-way call; returns the publish grant.

        Raises:
            Conflict: ``ended``, ``not_answered_yet``, ``call_busy`` (another inspector
                calls the site), ``on_floor`` (the site speaks in a live meeting: its
                voice would reach the program).
        """
        live = await self._live_one(actor, inspection_id)
        grant = await self.calls.start(live, actor, self._live.values())
        return Started(live.view, grant)

    async def end_call(self, actor: Actor, inspection_id: int) -> InspectionView:
        """Hang up (the inspection goes on, silent again)."""
        live = await self._live_one(actor, inspection_id)
        return await self.calls.hang_up(live, actor, "ended")

    async def floor_changed(self, speaker_codes: Sequence[str]) -> None:
        """A site given the floor leaves its call: the call must not reach the program."""
        codes = set(speaker_codes)
        for live in list(self._live.values()):
            if live.view.in_call and live.site.code in codes:
                await self.calls.hang_up(live, SYSTEM, "floor")

    async def _live_one(self, actor: Actor, inspection_id: int) -> LiveInspection:
        live = await self._owned(actor, inspection_id)
        if live is None:
            raise Conflict(f"inspection {inspection_id} has ended", code="ended")
        return live

    # --- the site's side --------------------------------------------------------------

    async def site_grant(self, actor: Actor) -> JsonObject:
        """A site's standby grant and who looks at it now (``GET /api/site/inspection``)."""
        if not actor.is_site or actor.site_id is None:
            raise Invalid("only a site has a standby grant", code="site_only")
        try:
            grant: Grant | None = await self.media.site_grant(actor.name)
        except (NotFound, Conflict) as exc:
            # No media plane (yet), or one that does not know the site yet: the terminal
            # stands by without media and asks again later; an idle page logs nothing.
            if exc.code not in ("no_media", "no_media_grant"):
                raise
            grant = None
        return {"watch": self.board.body(actor.site_id), "grant": grant}

    async def _on_state(self, principal: SitePrincipal, _body: Mapping[str, object]) -> JsonObject:
        """``inspect.state``: who looks at me now (asked on every welcome)."""
        return self.board.body(principal.site_id)

    async def _on_publishing(
        self, principal: SitePrincipal, _body: Mapping[str, object]
    ) -> JsonObject:
        """``inspect.publishing``: the site's uplink is up; its waiting inspections answered."""
        waiting = [
            lv.view.id
            for lv in self._live.values()
            if lv.site.id == principal.site_id and lv.view.state == "waiting"
        ]
        answered = await self.records.answered(waiting)
        for view in answered:
            live = self._live.get(view.id)
            if live is None:
                continue
            live.view = view
            await self._staff_event(view)
            await self._offer_recording(live)
        return {"answered": [v.id for v in answered]}

    async def _offer_recording(self, live: LiveInspection) -> None:
        if self.recording is None:
            return
        try:
            kept = await self.recording.inspection_started(
                live.actor, live.site.code, live.view.id, live.view.meeting_id
            )
        except Exception:
            log.exception("recording: inspection %d", live.view.id)
            return
        if kept:
            await self.records.set_recorded(live.view.id)
            live.view = replace(live.view, recorded=True)

    # --- telling ---------------------------------------------------------------------

    async def _tell(self, site_id: int) -> None:
        await self.notices.tell(site_id)

    async def _staff_event(self, view: InspectionView) -> None:
        await self.notices.staff(view)

    async def _display_name(self, actor: Actor) -> str:
        if actor.user_id is None:
            return actor.name
        async with self.db.session() as s:
            name = await s.scalar(
                select(StaffUser.display_name).where(StaffUser.id == actor.user_id)
            )
        return name or actor.name

    async def open_wall(
        self, actor: Actor, site_codes: Sequence[str], wall_id: str | None = None
    ) -> WallPage:
        """A page of the video wall (`WallDesk.show`), with the viewer's display name."""
        return await self.wall.show(actor, await self._display_name(actor), site_codes, wall_id)
