"""The demo's typed view of the running server: the services it drives and the actors it uses.

ADAPTER, the only one in the demo (issue 10): today the server's `Runtime` keeps its
services in a string-keyed registry (``runtime.services["meetings"]``) and the meetings
and command services each take their own actor type. The typed Runtime gives the same
services as attributes (``runtime.meetings``, ``runtime.media``, ``runtime.command``) and
one `diemcau.actors.Actor`. When it lands, `services_of` becomes a plain read of those
attributes and the two actor helpers become ``accounts.actor_of(principal)`` and
``Actor.for_site``; nothing else in the demo changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from diemcau.accounts.service import StaffPrincipal
from diemcau.actors import Actor
from diemcau.command.actors import Actor as CommandActor
from diemcau.command.runtime import CommandCenter
from diemcau.config import Settings
from diemcau.media.orchestrator import MediaOrchestrator
from diemcau.meetings.service import MeetingService
from diemcau.runtime import Runtime
from diemcau.store import Database

__all__ = [
    "CommandActor",
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
    """The typed services of a started server (ADAPTER: see the module docstring)."""
    meetings = runtime.services.get("meetings")
    media = runtime.services.get("media")
    command = runtime.services.get("command")
    if not isinstance(meetings, MeetingService):
        raise RuntimeError("the server runs without its meetings service")
    return DemoServices(
        settings=runtime.settings,
        db=runtime.db,
        meetings=meetings,
        media=media if isinstance(media, MediaOrchestrator) else None,
        command=command if isinstance(command, CommandCenter) else None,
    )


def command_staff_actor(chair: StaffPrincipal) -> CommandActor:
    """The chair as the command center's actor (ADAPTER: one Actor type later)."""
    return CommandActor.for_staff(chair.username, chair.role, user_id=chair.user_id)


def command_site_actor(site_id: int, code: str) -> CommandActor:
    """A site as the command center's actor (ADAPTER: one Actor type later)."""
    return CommandActor.for_site(site_id, code)


def meetings_actor(chair: StaffPrincipal) -> Actor:
    """The chair as the meetings service's actor (ADAPTER: ``accounts.actor_of`` later)."""
    return Actor.for_staff(chair.username, chair.role, chair.province_id, user_id=chair.user_id)
