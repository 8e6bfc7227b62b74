"""Sequenced message streams in memory: their numbering and a ring of recent messages.

Two kinds of stream exist (docs/protocol.md, "Sequence numbers"):

* each site's own stream (stored as ``site:<id>``, seen by the site as ``site``),
  fed by `PresenceHub.send`: every site gets its own sequence numbers;
* named broadcast streams (``meeting:42``), fed by `PresenceHub.broadcast`: one
  sequence for everyone, so a message is encoded once and the same bytes go to
  every follower (no per-site field: docs/performance.md).

A number is handed out when a message is submitted and counts as delivered once
it is stored and fanned out (`diemcau.presence.message_store.MessageWriter`). A
bounded ring of recent delivered messages serves most resumes from memory; older
ones come from the store.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from diemcau.errors import Invalid
from diemcau.presence.protocol import SITE_STREAM, msg_frame, valid_stream_name

__all__ = ["Stream", "StreamBook", "Outgoing", "check_stream_name", "site_stream_key"]


def check_stream_name(stream: str) -> None:
    """Raises `Invalid` unless `stream` is a valid broadcast stream name."""
    if not valid_stream_name(stream):
        raise Invalid(f"invalid stream name '{stream[:100]}'", code="bad_stream")


def site_stream_key(site_id: int) -> str:
    """The stored name of a site's own stream."""
    return f"site:{site_id}"


@dataclass(slots=True)
class Stream:
    """One sequenced stream.

    Attributes:
        key: stored name (``site:<id>`` or the broadcast name).
        seen_as: the name sites see in frames (``site`` or the broadcast name).
        site_id: the owning site for a site stream, None for a broadcast stream.
        seq: last number handed out.
        delivered: last number stored and fanned out (what a resume can reach).
        ring: recent delivered messages ``(seq, payload)`` for replay from memory.
    """

    key: str
    seen_as: str
    ring_size: int
    site_id: int | None = None
    seq: int = 0
    delivered: int = 0
    # Created on the first message: most site streams never carry one.
    ring: deque[tuple[int, bytes]] | None = None

    def __post_init__(self) -> None:
        self.delivered = self.seq

    def remember(self, seq: int, payload: bytes) -> None:
        if self.ring is None:
            self.ring = deque(maxlen=self.ring_size)
        self.ring.append((seq, payload))
        if seq > self.delivered:
            self.delivered = seq

    def forget(self) -> None:
        self.ring = None

    def from_memory(self, after: int) -> list[tuple[int, bytes]] | None:
        """Delivered messages with seq > `after`, or None if the ring no longer reaches back."""
        if after >= self.delivered:
            return []
        if not self.ring or self.ring[0][0] > after + 1:
            return None
        return [(s, p) for s, p in self.ring if s > after]


@dataclass
class Outgoing:
    """A numbered message waiting to be stored, then fanned out."""

    stream: Stream
    seq: int
    msg_id: str
    kind: str
    body_json: str
    at: float
    payload: bytes = b""

    def __post_init__(self) -> None:
        self.payload = msg_frame(
            self.stream.seen_as, self.seq, self.msg_id, self.kind, self.at, self.body_json
        )


class StreamBook:
    """Every stream's numbering: site streams by site id, broadcast streams by name.

    Streams are created on first use; their number continues from the last one
    stored before a restart (`seed`), so a resuming site never sees a number twice.

    Args:
        ring_size: recent messages kept per stream for resumes from memory.
    """

    def __init__(self, ring_size: int) -> None:
        self.ring_size = ring_size
        self._sites: dict[int, Stream] = {}
        self._broadcasts: dict[str, Stream] = {}
        self._stored: dict[str, int] = {}

    def seed(self, stored_seqs: dict[str, int]) -> None:
        """The last stored number of every stream (read from the store at start)."""
        self._stored = stored_seqs

    def site(self, site_id: int) -> Stream:
        """The site's own stream."""
        st = self._sites.get(site_id)
        if st is None:
            key = site_stream_key(site_id)
            st = Stream(
                key,
                SITE_STREAM,
                self.ring_size,
                site_id=site_id,
                seq=self._stored.pop(key, 0),
            )
            self._sites[site_id] = st
        return st

    def broadcast(self, name: str) -> Stream:
        """The broadcast stream `name` (created if new)."""
        st = self._broadcasts.get(name)
        if st is None:
            st = Stream(name, name, self.ring_size, seq=self._stored.pop(name, 0))
            self._broadcasts[name] = st
        return st

    def find_broadcast(self, name: str) -> Stream | None:
        """The broadcast stream `name` if it was used since start, else None."""
        return self._broadcasts.get(name)
