"""Two-way calls within inspections: started, hung up, and kept out of every program.

An answered inspection becomes a call when the inspector publishes its camera and
microphone to the site's call room (`InspectionMedia.call_grant`); the site is told to
play it. One inspector calls a site at a time, a site holding the floor of a live
meeting is not called (its answer would reach the program), and a site given the floor
during a call leaves it (`InspectionService.floor_changed`). Hanging up closes the call
room, so the inspector's feed stops even if its page kept its token.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace

from diemcau.actors import Actor
from diemcau.errors import Conflict
from diemcau.inspection.live import LiveInspection
from diemcau.inspection.notices import Notices
from diemcau.inspection.ports import FloorSites, Grant, InspectionMedia
from diemcau.inspection.records import InspectionRecords
from diemcau.inspection.views import InspectionView
from diemcau.inspection.watch import WatchBoard

__all__ = ["Calls"]

log = logging.getLogger(__name__)


@dataclass(eq=False, repr=False)
class Calls:
    """Starts and ends the calls of open inspections (records, media, the site told).

    ``floor_sites`` (None: no meetings) keeps a call away from a site on the floor.
    """

    records: InspectionRecords
    media: InspectionMedia
    board: WatchBoard
    notices: Notices
    floor_sites: FloorSites | None

    async def start(
        self, live: LiveInspection, actor: Actor, others: Iterable[LiveInspection]
    ) -> Grant:
        """The inspector's publish grant; the call is recorded and the site told once.

        Raises:
            Conflict: ``not_answered_yet``, ``call_busy``, ``on_floor``.
        """
        if live.view.state != "live":
            raise Conflict("the site has not answered yet", code="not_answered_yet")
        if not live.view.in_call:
            if any(lv.view.in_call and lv.site.id == live.site.id for lv in others):
                raise Conflict("another inspector is calling this site", code="call_busy")
            if await self._on_floor(live.site.code):
                raise Conflict(
                    "the site holds the floor of a live meeting: call it after its turn",
                    code="on_floor",
                )
        grant = await self.media.call_grant(live.site.code)
        if not live.view.in_call:
            live.view = await self.records.call_started(actor, live.view.id)
            await self._show(live, call=True)
        return grant

    async def hang_up(self, live: LiveInspection, actor: Actor, reason: str) -> InspectionView:
        """End the call (if any); the inspection goes on, silent again."""
        if not live.view.in_call:
            return live.view
        live.view = await self.records.call_ended(actor, live.view.id, reason)
        await self.close_room(live.site.code)
        await self._show(live, call=False)
        return live.view

    async def close_room(self, site_code: str) -> None:
        try:
            await self.media.end_call(site_code)
        except Exception:  # the plane may be gone: the record is already closed
            log.warning("could not close the call room of %s", site_code, exc_info=True)

    async def _show(self, live: LiveInspection, *, call: bool) -> None:
        live.looker = replace(live.looker, call=call)
        self.board.put(live.site.id, live.looker)
        await self.notices.tell(live.site.id)
        await self.notices.staff(live.view)

    async def _on_floor(self, site_code: str) -> bool:
        if self.floor_sites is None:
            return False
        floors = await self.floor_sites()
        return any(site_code in codes for codes in floors.values())
