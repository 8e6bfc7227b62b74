"""What the inspection service needs from presence, media, meetings and recording.

The inspection package owns these ports; the composition root (`diemcau.wiring`) plugs
the presence hub, an adapter over the media orchestrator, the meetings' live state and
(once it exists) the recording service into them, so inspection never imports a peer
service (docs/architecture.md). Tests hand in small fakes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Protocol

from diemcau.accounts.service import SitePrincipal
from diemcau.actors import Actor
from diemcau.records import JsonObject

__all__ = [
    "FloorSites",
    "Grant",
    "InspectionMedia",
    "LiveMeetingOf",
    "RecordingHook",
    "SiteControl",
    "SiteRequestHandler",
]

# A media grant as the browser reads it (docs/media.md: node, ws_url, tokens ...):
# inspection hands it on as the media plane made it.
Grant = JsonObject

# Answers one site request (``inspect.publishing``, ``inspect.state``) with a reply body.
SiteRequestHandler = Callable[
    [SitePrincipal, Mapping[str, object]], Awaitable[Mapping[str, object] | None]
]

# The live meeting a site is in now (None: none), from the meetings' in-memory mirror.
LiveMeetingOf = Callable[[int], int | None]

# Site codes holding the floor in every live meeting (a call must not reach the program).
FloorSites = Callable[[], Awaitable[Mapping[int, Sequence[str]]]]


class SiteControl(Protocol):
    """The part of the presence hub inspection uses: tell a site, hear it, see it."""

    async def send(
        self, site_ids: Collection[int], kind: str, body: Mapping[str, object], *, durable: bool
    ) -> None: ...

    def is_online(self, site_id: int) -> bool: ...

    def on_message(self, kind: str, handler: SiteRequestHandler) -> None: ...

    async def publish_staff_event(
        self, kind: str, body: Mapping[str, object], *, province_id: int | None = None
    ) -> None: ...


class InspectionMedia(Protocol):
    """The grants an inspection needs from the media plane.

    Every method raises `diemcau.errors.NotFound` (``no_media``) while no media plane
    runs and `diemcau.errors.Conflict` (``no_media_grant``) when the plane cannot
    serve the site (unknown to it, no relay up).
    """

    async def watch_grant(self, site_code: str) -> Grant:
        """The inspector's: subscribe to the site's uplink feed on its relay."""
        ...

    async def site_grant(self, site_code: str) -> Grant:
        """The site's: publish its uplink, and subscribe to an inspector's call feed."""
        ...

    async def call_grant(self, site_code: str) -> Grant:
        """The inspector's: publish camera and microphone into the site's call room."""
        ...

    async def end_call(self, site_code: str) -> None:
        """Close the site's call room: nobody publishes to that site any more."""
        ...

    async def wall_grants(self, site_codes: Sequence[str]) -> list[Grant]:
        """One grant per relay for a page of the video wall (thumbnail layer)."""
        ...


class RecordingHook(Protocol):
    """Where an inspection is offered for recording (a meeting's policy decides).

    Returns whether it is recorded. Called once the site answers; a failure is logged
    and never stops the inspection.
    """

    async def inspection_started(
        self, actor: Actor, site_code: str, inspection_id: int, meeting_id: int | None
    ) -> bool: ...

    async def inspection_ended(self, inspection_id: int, meeting_id: int | None) -> None: ...
