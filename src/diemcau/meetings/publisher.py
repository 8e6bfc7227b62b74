"""Announcing committed meeting decisions to sites, staff consoles and the media plane.

Every meetings peer persists and audits a decision first, then hands it here. An
announcement is best effort: a failing broadcast, staff event or media call is logged
and never undoes nor fails the stored decision (docs/meetings.md, "Persist, then
announce"); sites catch up from the meeting's state when they resume.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence

from diemcau.meetings.ports import Hub, MediaPort
from diemcau.meetings.views import MeetingView

__all__ = ["Publisher", "stream_of"]

log = logging.getLogger(__name__)


def stream_of(meeting_id: int) -> str:
    """The broadcast stream every participant of a meeting follows."""
    return f"meeting:{meeting_id}"


class Publisher:
    """Best-effort announcements of meetings' decisions.

    Args:
        hub: the presence hub (broadcasts and the staff live stream).
        media: the media plane's port, or None when this server runs no media.
    """

    def __init__(self, hub: Hub, media: MediaPort | None = None) -> None:
        self.hub = hub
        self.media = media

    async def broadcast(
        self, meeting_id: int, kind: str, body: Mapping[str, object], *, staff: bool = True
    ) -> None:
        """Broadcast on the meeting's stream (encoded once by the hub) and tell staff."""
        try:
            await self.hub.broadcast(stream_of(meeting_id), kind, body)
        except Exception:
            log.exception("broadcast of %s for meeting %s failed", kind, meeting_id)
        if staff:
            await self.staff_event(kind, body)

    async def staff_event(
        self, kind: str, body: Mapping[str, object], *, province_id: int | None = None
    ) -> None:
        """Tell the staff consoles (advisory: the change is already stored)."""
        try:
            await self.hub.publish_staff_event(kind, body, province_id=province_id)
        except Exception:
            log.exception("staff event %s failed", kind)

    async def meeting_event(self, kind: str, view: MeetingView) -> None:
        """Tell staff a meeting changed (created, updated, started, ended)."""
        await self.staff_event(kind, {"meeting": view.as_dict()})

    # --- the media plane --------------------------------------------------------------

    async def start_program(self, meeting_id: int) -> None:
        await self._media("start_program", meeting_id, lambda m: m.start_program(meeting_id))

    async def stop_program(self, meeting_id: int) -> None:
        await self._media("stop_program", meeting_id, lambda m: m.stop_program(meeting_id))

    async def set_floor(self, meeting_id: int, site_codes: Sequence[str]) -> None:
        await self._media("set_floor", meeting_id, lambda m: m.set_floor(meeting_id, site_codes))

    async def chair_lost(self, meeting_id: int, usernames: Collection[str]) -> None:
        if usernames:
            await self._media(
                "chair_lost", meeting_id, lambda m: m.chair_lost(meeting_id, usernames)
            )

    async def _media(
        self, what: str, meeting_id: int, call: Callable[[MediaPort], Awaitable[None]]
    ) -> None:
        """Ask the media plane, if any; its failure is logged, never raised."""
        if self.media is not None:
            try:
                await call(self.media)
            except Exception:
                log.exception("media %s of meeting %s failed", what, meeting_id)
