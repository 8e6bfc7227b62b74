"""The demo's typed view of the running server: the services it drives and the actors it uses.

The server's `Runtime` gives its services as typed attributes (``runtime.meetings``,
``runtime.media``, ``runtime.command``); the command center takes the one
`diemcau.actors.Actor` like meetings (``accounts.actor_of(principal)`` for the
chair, ``Actor.for_site`` for a site).
"""

from __future__ import annotations

from dataclasses import dataclass

from diemcau.accounts.actors import actor_of
from diemcau.accounts.service import StaffPrincipal
from diemcau.actors import Actor
from diemcau.command.center import CommandCenter
from diemcau.config import Settings
from diemcau.media.orchestrator import MediaOrchestrator
from diemcau.meetings.service import MeetingService
from diemcau.runtime import Runtime
from diemcau.store import Database

__all__ = [
    "CommandCenter",
    "DemoServices",
    "command_site_actor",
    "command_staff_actor",
    "meetings_actor",
    "services_of",
]


@dataclass(frozen=True)
class DemoServices:
    """The services of the running server that the demo drives, through their public API.

    Attributes:
        settings: the server's settings.
        db: the store (read only, for logins).
        meetings: the meetings service (meeting start, floor, attendance).
        media: the media orchestrator, or None when the server runs without media.
        command: the command center, if the server has one.
    """

    settings: Settings
    db: Database
    meetings: MeetingService
    media: MediaOrchestrator | None
    command: CommandCenter | None


def services_of(runtime: Runtime) -> DemoServices:
    """The typed services of a started server."""
    return DemoServices(
        settings=runtime.settings,
        db=runtime.db,
        meetings=runtime.meetings,
        media=runtime.media,
        command=runtime.command,
    )


def command_staff_actor(chair: StaffPrincipal) -> Actor:
    """The chair as the command center's actor."""
    return actor_of(chair)


def command_site_actor(site_id: int, code: str) -> Actor:
    """A site as the command center's actor."""
    return Actor.for_site(site_id, code)


def meetings_actor(chair: StaffPrincipal) -> Actor:
    """The chair as the meetings service's actor."""
    return actor_of(chair)
