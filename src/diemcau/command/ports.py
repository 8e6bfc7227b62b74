"""What the command center needs from the presence hub and the meetings service.

The command package owns these ports; the composition root (`diemcau.wiring`) plugs
the hub and the meetings service into them, so command never imports a peer service.
Tests hand in small fakes (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Protocol

from diemcau.accounts.service import SitePrincipal

__all__ = [
    "CommandHub",
    "GroupSites",
    "LiveMeetings",
    "PresenceChange",
    "PresenceView",
    "SiteDelivery",
    "SiteMessageHandler",
    "StaffEvents",
]

# Ids of the meetings running now (the offline-in-meeting rule).
LiveMeetings = Callable[[], Awaitable[Collection[int]]]

# The sites a saved site group reaches now (the directive form's audience); raises
# NotFound for an unknown group. Groups are kept by meetings.
GroupSites = Callable[[int], Awaitable[Collection[int]]]

# Answers one site request (``report.submit`` ...) with a reply body.
SiteMessageHandler = Callable[
    [SitePrincipal, Mapping[str, object]], Awaitable[Mapping[str, object] | None]
]


class PresenceChange(Protocol):
    """One presence transition as the rules read it."""

    @property
    def site_id(self) -> int: ...

    @property
    def new(self) -> str: ...

    @property
    def reason(self) -> str: ...

    @property
    def province_id(self) -> int | None: ...


class StaffEvents(Protocol):
    """Where staff events go (the hub's staff live stream)."""

    async def publish_staff_event(
        self, kind: str, body: Mapping[str, object], *, province_id: int | None = None
    ) -> None: ...


class SiteDelivery(StaffEvents, Protocol):
    """Lossless per-site delivery (directives) and the staff stream."""

    async def send(
        self, site_ids: Collection[int], kind: str, body: Mapping[str, object], *, msg_id: str
    ) -> None: ...


class PresenceView(Protocol):
    """What the rules read about a site's session."""

    def is_online(self, site_id: int) -> bool: ...

    def streams_of(self, site_id: int) -> dict[str, int]: ...


class CommandHub(SiteDelivery, PresenceView, Protocol):
    """The whole part of the presence hub the command center uses."""

    def on_message(self, kind: str, handler: SiteMessageHandler) -> None: ...

    def add_listener(
        self, callback: Callable[[PresenceChange], Awaitable[None] | None]
    ) -> None: ...
