"""What the recording service needs from the media plane, meetings and the command center.

Recording owns these small interfaces; the composition root plugs the media
plane's `ProgramRecorder`, the meetings' history and conclusions and the command
center's directives and alerts into them, so this package imports no peer
service. The records are read-only protocols the peers' own frozen dataclasses
satisfy as they are.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from diemcau.actors import Actor
from diemcau.alerting import AlertSink, Severity

__all__ = [
    "AlertSink",
    "ConclusionPublisher",
    "ConclusionRecord",
    "DirectiveRecord",
    "DirectiveSource",
    "FloorHistory",
    "FloorRecord",
    "HandRecord",
    "IntervalRecord",
    "MeetingHistory",
    "MeetingRecord",
    "ProgramChange",
    "ProgramRecorderPort",
    "Severity",
]

FeedRoles = Mapping[int, tuple[str, str | None]]


class ProgramRecorderPort(Protocol):
    """Janus recording of a meeting's rooms on the central node (media plane).

    ``room`` is ``program`` (the chair and the floor) or ``inspect`` (the site of a
    recorded spot-check, carried there by `inspect`).
    """

    async def publishers(self, meeting_id: int, room: str = "program") -> FeedRoles | None:
        """Feed id → (role, site code) now in the room; None: no program runs."""
        ...

    async def record(self, meeting_id: int, node_folder: str, room: str = "program") -> bool:
        """Record the publishers now in the room into a folder of the central node."""
        ...

    async def stop(self, meeting_id: int, room: str = "program") -> None: ...

    async def inspect(self, meeting_id: int, site_code: str | None) -> bool:
        """Carry a site's own feed into the meeting's inspect room (None: stop)."""
        ...


class ProgramChange(Protocol):
    """A floor decision of meetings (start, grant, revoke, ..., end) as recording reads it."""

    @property
    def meeting_id(self) -> int: ...

    @property
    def action(self) -> str: ...

    @property
    def at(self) -> datetime: ...


class MeetingRecord(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def title(self) -> str: ...
    @property
    def agenda(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def chair_user_id(self) -> int: ...
    @property
    def chair_name(self) -> str: ...
    @property
    def delegates(self) -> tuple[int, ...]: ...
    @property
    def started_at(self) -> datetime | None: ...
    @property
    def ended_at(self) -> datetime | None: ...
    @property
    def late_after_s(self) -> int: ...


class IntervalRecord(Protocol):
    @property
    def site_id(self) -> int: ...
    @property
    def joined_at(self) -> datetime: ...
    @property
    def left_at(self) -> datetime | None: ...
    @property
    def left_reason(self) -> str | None: ...


class FloorRecord(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def site_id(self) -> int: ...
    @property
    def granted_at(self) -> datetime: ...
    @property
    def revoked_at(self) -> datetime | None: ...
    @property
    def granted_by(self) -> str: ...


class HandRecord(Protocol):
    @property
    def site_id(self) -> int: ...
    @property
    def raised_at(self) -> datetime: ...
    @property
    def closed_at(self) -> datetime | None: ...
    @property
    def outcome(self) -> str | None: ...


class AckRecord(Protocol):
    @property
    def site_id(self) -> int: ...
    @property
    def acked_at(self) -> datetime: ...


class ConclusionRecord(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def body(self) -> str: ...
    @property
    def published_at(self) -> datetime: ...
    @property
    def acks(self) -> Sequence[AckRecord]: ...


class FloorHistory(Protocol):
    """What post-processing needs of a meeting: its end and its floor grants."""

    async def meeting(self, meeting_id: int) -> MeetingRecord | None: ...

    async def floor(self, meeting_id: int) -> Sequence[FloorRecord]: ...


class MeetingHistory(FloorHistory, Protocol):
    """A meeting's past, read-only (meetings' ``MeetingHistory``)."""

    async def participants(self, meeting_id: int) -> Sequence[int]: ...

    async def attendance(self, meeting_id: int) -> Sequence[IntervalRecord]: ...

    async def hands(self, meeting_id: int) -> Sequence[HandRecord]: ...

    async def conclusions(self, meeting_id: int) -> Sequence[ConclusionRecord]: ...

    async def live_meeting_of(self, site_id: int) -> int | None:
        """The live meeting a site is in, if any."""
        ...


class DirectiveRecord(Protocol):
    """A directive issued by the command center (its ``DirectiveView``)."""

    @property
    def id(self) -> int: ...
    @property
    def title(self) -> str: ...
    @property
    def priority(self) -> str: ...
    @property
    def issued_by(self) -> str: ...
    @property
    def issued_at(self) -> datetime: ...
    @property
    def recipients(self) -> int: ...
    @property
    def acknowledged(self) -> int: ...


# Directives issued in [since, until).
DirectiveSource = Callable[[datetime, datetime], Awaitable[Sequence[DirectiveRecord]]]


class ConclusionPublisher(Protocol):
    """Publishes a conclusion to every participant of a meeting (meetings' conclusions).

    The minutes travel to the sites this way, so the sites' acknowledgements of
    that conclusion are the minutes' read receipts.
    """

    async def __call__(
        self, actor: Actor, meeting_id: int, body: str, attachments: Sequence[Mapping[str, object]]
    ) -> int: ...
