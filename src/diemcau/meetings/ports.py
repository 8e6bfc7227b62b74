"""What meetings needs from the presence hub and the media plane, and what it offers them.

The hub and the media orchestrator live in other packages; meetings codes against
these small structural types (hub interface: docs of ``diemcau.presence.hub``), so a
test can hand in a fake and the service never imports the transport. The composition
root hands in the real ones (docs/meetings.md, "Wiring").
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from diemcau.accounts.service import SitePrincipal
from diemcau.records import Record

__all__ = [
    "FloorDecision",
    "FloorListener",
    "Hub",
    "MediaPort",
    "MessageHandler",
    "NullHub",
    "PresenceListener",
    "SiteChange",
    "SpeakerView",
    "call_listener",
]

log = logging.getLogger(__name__)

MessageHandler = Callable[
    [SitePrincipal, Mapping[str, object]], Awaitable[Mapping[str, object] | None]
]


class SiteChange(Protocol):
    """The part of a presence transition meetings reads (``presence.hub.PresenceChange``)."""

    @property
    def site_id(self) -> int: ...


PresenceListener = Callable[[SiteChange], Awaitable[None] | None]


class Hub(Protocol):
    """The part of ``PresenceHub`` meetings uses."""

    async def send(
        self,
        site_ids: Collection[int],
        kind: str,
        body: Mapping[str, object],
        *,
        msg_id: str | None = None,
        durable: bool = True,
    ) -> None: ...

    async def broadcast(
        self,
        stream: str,
        kind: str,
        body: Mapping[str, object],
        *,
        durable: bool = True,
        msg_id: str | None = None,
    ) -> int: ...

    async def follow(self, stream: str, site_ids: Collection[int]) -> None: ...

    async def unfollow(self, stream: str, site_ids: Collection[int] | None = None) -> None: ...

    def on_message(self, kind: str, handler: MessageHandler) -> None: ...

    def is_online(self, site_id: int) -> bool: ...

    def add_listener(self, callback: PresenceListener) -> None: ...

    async def publish_staff_event(
        self, kind: str, body: Mapping[str, object], *, province_id: int | None = None
    ) -> None: ...


class NullHub:
    """A hub with no sites: used when the presence service is not attached (CLI tools)."""

    async def send(
        self,
        site_ids: Collection[int],
        kind: str,
        body: Mapping[str, object],
        *,
        msg_id: str | None = None,
        durable: bool = True,
    ) -> None:
        return None

    async def broadcast(
        self,
        stream: str,
        kind: str,
        body: Mapping[str, object],
        *,
        durable: bool = True,
        msg_id: str | None = None,
    ) -> int:
        return 0

    async def follow(self, stream: str, site_ids: Collection[int]) -> None:
        return None

    async def unfollow(self, stream: str, site_ids: Collection[int] | None = None) -> None:
        return None

    def on_message(self, kind: str, handler: MessageHandler) -> None:
        return None

    def is_online(self, site_id: int) -> bool:
        return False

    def add_listener(self, callback: PresenceListener) -> None:
        return None

    async def publish_staff_event(
        self, kind: str, body: Mapping[str, object], *, province_id: int | None = None
    ) -> None:
        return None


class MediaPort(Protocol):
    """What meetings asks of the media plane: run a meeting's program, switch its floor.

    The composition root hands in an adapter that forwards to the media orchestrator
    while the media plane runs and does nothing otherwise. Meetings calls it after the
    decision is committed and announced, and only logs a failure (docs/meetings.md,
    "Floor control"): a media fault never undoes a chair's decision.
    """

    async def start_program(self, meeting_id: int) -> None: ...

    async def stop_program(self, meeting_id: int) -> None: ...

    async def set_floor(self, meeting_id: int, site_codes: Sequence[str]) -> None: ...

    async def chair_lost(self, meeting_id: int, usernames: Collection[str]) -> None:
        """Staff ``usernames`` may no longer run the live meeting (delegates removed):
        the media plane takes the chair feed back from them (docs/media.md)."""
        ...


@dataclass(frozen=True)
class SpeakerView(Record):
    """A site holding the floor."""

    site_id: int
    code: str
    name: str
    province_id: int | None
    province_name: str


@dataclass(frozen=True)
class FloorDecision(Record):
    """One floor decision, as the media layer and other listeners receive it.

    Its reply (``as_dict``, see `Record`) is what sites get in ``floor.changed``.

    Attributes:
        meeting_id: the meeting.
        action: grant | revoke | next | mute_all | allow_unmute | start | end | leave.
        speakers: who holds the floor after the decision (zero, one or two sites).
        muted_all: whether every site but the speakers is muted.
        unmute_allowed: whether sites may unmute themselves.
        version: the meeting's floor version (increases by one per decision).
        at: when it was decided.
        actor: who decided (username, site code or "system").
    """

    meeting_id: int
    action: str
    speakers: tuple[SpeakerView, ...]
    muted_all: bool
    unmute_allowed: bool
    version: int
    at: datetime
    actor: str

    @property
    def speaker_codes(self) -> list[str]:
        return [s.code for s in self.speakers]


FloorListener = Callable[[FloorDecision], Awaitable[None] | None]


async def call_listener(listener: FloorListener, decision: FloorDecision) -> None:
    """Call a floor listener (sync or async); log (never propagate) its failure.

    A floor decision is already persisted and broadcast when listeners run: a broken
    subscriber must not undo it or block the chair.
    """
    try:
        result = listener(decision)
        if inspect.isawaitable(result):
            await result
    except Exception:
        log.exception("floor listener failed")
