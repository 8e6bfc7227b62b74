"""The running control server's shared parts, typed, as the composition root built them.

`Runtime` holds the store, the instance key, the clock, the one site directory and
every long-lived service as a typed attribute. `diemcau.wiring.build_runtime` builds
it (constructors and the reactions between services live there, nowhere else); the
HTTP app starts and stops it in its lifespan, so a test that builds the app gets the
same wiring as production (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from diemcau.command.center import CommandCenter
from diemcau.config import Settings
from diemcau.directory.credentials import SiteCredentials
from diemcau.directory.sites import SiteDirectory
from diemcau.inspection.service import InspectionService
from diemcau.instance_keys import InstanceKeys
from diemcau.media.orchestrator import MediaOrchestrator
from diemcau.media.service import MediaPlaneService
from diemcau.meetings.service import MeetingService
from diemcau.presence.hub import PresenceHub
from diemcau.recording.service import RecordingService
from diemcau.store import Database

__all__ = ["Runtime", "Service"]


class Service(Protocol):
    """A long-lived part started with the app and stopped with it."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class Runtime:
    """Shared parts of one control-server process.

    Attributes:
        settings: resolved settings.
        db: the store.
        keys: the instance keys: `keys.token` signs session tokens, `keys.site` keys
            the site-secret digests (docs/security.md, "Keys").
        clock: wall clock in seconds; tests inject a fake one.
        sites: the one read model of sites every service asks.
        credentials: staff rotating or revoking a site's credential.
        presence: the site-session hub (sessions, presence, lossless delivery).
        meetings: the meeting service (lifecycle, floor, attendance, conclusions).
        command: the command center (reports, aggregates, directives, alerts).
        media_plane: the media plane's lifecycle; `media` is its running orchestrator.
        inspection: online inspections, their calls, rounds and the video wall's leases.
        recording: recordings, timelines and minutes of meetings.
        lifecycle: what `start` starts, in order (`stop` stops them in reverse).
    """

    settings: Settings
    db: Database
    keys: InstanceKeys
    clock: Callable[[], float]
    sites: SiteDirectory
    credentials: SiteCredentials
    presence: PresenceHub
    meetings: MeetingService
    command: CommandCenter
    media_plane: MediaPlaneService
    inspection: InspectionService
    recording: RecordingService
    lifecycle: Sequence[Service] = ()
    _started: int = field(default=0, repr=False)

    @property
    def media(self) -> MediaOrchestrator | None:
        """The media orchestrator while a media plane runs, else None."""
        return self.media_plane.orchestrator

    async def start(self) -> None:
        """Start every service not yet started, in order (idempotent)."""
        for service in self.lifecycle[self._started :]:
            await service.start()
            self._started += 1

    async def stop(self) -> None:
        """Stop the started services in reverse order, once site requests have ended."""
        if self._started:
            await self.presence.stop_requests()
        while self._started:
            self._started -= 1
            await self.lifecycle[self._started].stop()

    async def close(self) -> None:
        await self.stop()
        await self.db.dispose()
