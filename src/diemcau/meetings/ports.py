"""What meetings needs from the presence hub and the media plane, and what it offers them.

The hub and the media orchestrator live in other packages; meetings codes against
these small structural types (hub interface: docs of ``diemcau.presence.hub``), so a
test can hand in a fake and the service never imports the transport.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from diemcau.accounts.service import SitePrincipal

__all__ = [
    "FloorDecision",
    "FloorListener",
    "Hub",
    "MessageHandler",
    "NullHub",
    "SpeakerView",
    "call_maybe_async",
]

log = logging.getLogger(__name__)

MessageHandler = Callable[[SitePrincipal, Mapping[str, Any]], Awaitable[Mapping[str, Any] | None]]


class Hub(Protocol):
    """The part of ``PresenceHub`` meetings uses."""

    async def send(
        self,
        site_ids: Collection[int],
        kind: str,
        body: Mapping[str, Any],
        *,
        msg_id: str | None = None,
        durable: bool = True,
    ) -> None: ...

    async def broadcast(
        self,
        stream: str,
        kind: str,
        body: Mapping[str, Any],
        *,
        durable: bool = True,
        msg_id: str | None = None,
    ) -> int: ...

    async def follow(self, stream: str, site_ids: Collection[int]) -> None: ...

    async def unfollow(self, stream: str, site_ids: Collection[int] | None = None) -> None: ...

    def on_message(self, kind: str, handler: MessageHandler) -> None: ...

    def is_online(self, site_id: int) -> bool: ...

    def add_listener(self, callback: Callable[[Any], Awaitable[None] | None]) -> None: ...

    async def publish_staff_event(
        self, kind: str, body: Mapping[str, Any], *, province_id: int | None = None
    ) -> None: ...


class NullHub:
    """A hub with no sites: used when the presence service is not attached (CLI tools)."""

    async def send(
        self,
        site_ids: Collection[int],
        kind: str,
        body: Mapping[str, Any],
        *,
        msg_id: str | None = None,
        durable: bool = True,
    ) -> None:
        return None

    async def broadcast(
        self,
        stream: str,
        kind: str,
        body: Mapping[str, Any],
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

    def add_listener(self, callback: Callable[[Any], Awaitable[None] | None]) -> None:
        return None

    async def publish_staff_event(
        self, kind: str, body: Mapping[str, Any], *, province_id: int | None = None
    ) -> None:
        return None


@dataclass(frozen=True)
class SpeakerView:
    """A site holding the floor."""

    site_id: int
    code: str
    name: str
    province_id: int | None
    province_name: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "site_id": self.site_id,
            "code": self.code,
            "name": self.name,
            "province_id": self.province_id,
            "province_name": self.province_name,
        }


@dataclass(frozen=True)
class FloorDecision:
    """One floor decision, as the media layer and other listeners receive it.

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

    def as_dict(self) -> dict[str, Any]:
        return {
            "meeting_id": self.meeting_id,
            "action": self.action,
            "speakers": [s.as_dict() for s in self.speakers],
            "muted_all": self.muted_all,
            "unmute_allowed": self.unmute_allowed,
            "version": self.version,
            "at": self.at.isoformat(),
            "actor": self.actor,
        }


FloorListener = Callable[[FloorDecision], Awaitable[None] | None]


async def call_maybe_async(what: str, fn: Callable[..., Any], *args: Any) -> None:
    """Call a listener or media hook; log (never propagate) its failure.

    A floor decision is already persisted and broadcast when hooks run: a broken
    subscriber must not undo it or block the chair.
    """
    try:
        result = fn(*args)
        if inspect.isawaitable(result):
            await result
    except Exception:
        log.exception("%s failed", what)
