"""Telling sites who looks at them, and staff that an inspection changed.

Both go out after the store was written (docs/architecture.md); a failure to tell is
logged and never undoes what was recorded: a site asks again on its next welcome
(``inspect.state``), consoles refresh on a timer.
"""

from __future__ import annotations

import logging

from diemcau.inspection.ports import SiteControl
from diemcau.inspection.views import InspectionView
from diemcau.inspection.watch import WATCH_KIND, WatchBoard

__all__ = ["STAFF_EVENT", "Notices"]

log = logging.getLogger(__name__)

# The staff live-stream event of an inspection that changed (consoles refresh on it).
STAFF_EVENT = "inspection.changed"


class Notices:
    """The site's whole watch state (live only), and the staff event."""

    def __init__(self, presence: SiteControl, board: WatchBoard) -> None:
        self.presence = presence
        self.board = board

    async def tell(self, site_id: int) -> None:
        try:
            body = self.board.body(site_id)
            await self.presence.send([site_id], WATCH_KIND, body, durable=False)
        except Exception:
            log.exception("could not tell site %d who looks at it", site_id)

    async def staff(self, view: InspectionView) -> None:
        body = {
            "id": view.id,
            "site_code": view.site_code,
            "state": view.state,
            "in_call": view.in_call,
            "inspector": view.inspector,
        }
        try:
            await self.presence.publish_staff_event(STAFF_EVENT, body, province_id=view.province_id)
        except Exception:
            log.exception("staff event of inspection %d", view.id)
