"""The site socket's connection: `websockets`' ServerConnection with a heartbeat fast path.

At 10,795 sites heartbeating four times a second (protocol v2, docs/protocol.md)
the server receives ~43,000 heartbeats a second. Through the library each one
costs ~20 µs (frame parser, message queue, a task wake-up, then the session's
own parse): most of a core for "still here". So a chunk of bytes that is
exactly one or more complete, masked, unfragmented text frames each holding a
plain heartbeat (``{"type":"hb"}``, optionally with a numeric ``t``), arriving
while the library's parser waits at a frame boundary, is recognised here and
only stamps the session (`HeartbeatSink.heartbeat`). Anything else, and any
doubt, goes to the library untouched: the fast path can only skip work, never
change what a message means.
"""

from __future__ import annotations

import asyncio
import collections
import re
from collections.abc import Iterable
from typing import Any, Protocol, TypeVar

from websockets.asyncio.server import ServerConnection
from websockets.protocol import Protocol as WebSocketProtocol
from websockets.streams import StreamReader

try:  # the library's C helper; the pure-Python one is the same function, slower
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - a build without the extension
    from websockets.utils import apply_mask

__all__ = ["HeartbeatSink", "SiteConnection", "heartbeat_frames"]

# What browsers' JSON.stringify and the simulator send: no spaces, ``t`` optional.
_HEARTBEAT = re.compile(rb'\{"type":"hb"(?:,"t":-?\d{1,17}(?:\.\d{1,17})?(?:[eE][+-]?\d{1,3})?)?\}')
# Longest payload worth trying (a heartbeat with ``t`` is ~40 bytes).
_MAX_PAYLOAD = 64
# The library's frame loop waits here, and only here, when it is between two frames
# (after a close it is replaced by a discarding loop, which waits there too).
_FRAME_LOOP = WebSocketProtocol.parse.__code__
_BETWEEN_FRAMES = StreamReader.at_eof.__code__


class HeartbeatSink(Protocol):
    """Who is told of heartbeats the fast path took (the site's session)."""

    def heartbeat(self, count: int) -> None: ...


def heartbeat_frames(data: bytes) -> int:
    """How many heartbeat frames `data` is made of; 0 unless it is heartbeats only.

    Each frame must be a complete client frame (RFC 6455 §5.2): FIN and text
    opcode with no reserved bits (``0x81``), masked, a 7-bit length, and an
    unmasked payload matching a plain heartbeat.
    """
    n = len(data)
    pos = 0
    count = 0
    while pos < n:
        if data[pos] != 0x81 or n - pos < 6:
            return 0
        b1 = data[pos + 1]
        size = b1 & 0x7F
        if b1 < 0x80 or size > _MAX_PAYLOAD:
            return 0
        end = pos + 6 + size
        if end > n:
            return 0
        if _HEARTBEAT.fullmatch(apply_mask(data[pos + 6 : end], data[pos + 2 : pos + 6])) is None:
            return 0
        count += 1
        pos = end
    return count


_T = TypeVar("_T")


class _SmallQueue(list[_T]):
    """A list standing in for one of the library's per-connection deques.

    An empty deque takes 760 bytes, and the library keeps two per connection (the
    inbound frames and the writers waiting for a drain): 16 MB at 10,794 sites for
    queues that hold a frame or two at most (docs/performance.md).
    """

    __slots__ = ()

    def popleft(self) -> _T:
        return self.pop(0)

    def extendleft(self, items: Iterable[_T]) -> None:
        self[:0] = list(items)[::-1]  # as deque.extendleft: each item to the left in turn


class SiteConnection(ServerConnection):
    """A `ServerConnection` whose heartbeats skip the library once a session is attached.

    Attributes:
        heartbeats: the live session (set by the server once the session runs,
            cleared when it ends); None means every byte goes to the library.
    """

    heartbeats: HeartbeatSink | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        # Only what the library uses of them: append, remove, iterate (drain waiters);
        # append, popleft, extendleft, len (frames). Left alone if the library changed.
        if isinstance(self.drain_waiters, collections.deque) and not self.drain_waiters:
            self.drain_waiters = _SmallQueue[asyncio.Future[None]]()  # type: ignore[assignment]
        # The library's frame queue, reached by name so a renamed one is left alone.
        frames: Any = getattr(getattr(self, "recv_messages", None), "frames", None)
        if isinstance(getattr(frames, "queue", None), collections.deque) and not frames.queue:
            frames.queue = _SmallQueue()

    def forget_handshake(self) -> None:
        """Let the upgrade's headers go (~2 KB a site): only the handshake reads them.

        The library keeps the request and the response for the connection's life (the
        request also in its parser's frame, and `request` must stay set: the first
        event seen with none is taken for a handshake), so the request's headers are
        emptied in place and the response is dropped. `PresenceServer` reads only the
        request's path, and only in the handshake.
        """
        if self.request is not None:
            self.request.headers.clear()
        self.response = None

    def data_received(self, data: bytes) -> None:
        # Hot: ~43,000 calls a second at national scale. The common case (one plain
        # heartbeat frame) is checked inline; `heartbeat_frames` takes the rest.
        sink = self.heartbeats
        if sink is not None:
            # The parser's generator chain (gi_yieldfrom, gi_code: typed on
            # ``types.GeneratorType``, not on the ``Generator`` the library declares).
            outer: Any = self.protocol.parser
            inner = outer.gi_yieldfrom
            while inner is not None and inner.gi_yieldfrom is not None:
                outer, inner = inner, inner.gi_yieldfrom
            # Between frames, and not inside a fragmented message (RFC 6455 §5.4).
            if (
                inner is not None
                and inner.gi_code is _BETWEEN_FRAMES
                and outer.gi_code is _FRAME_LOOP
                and self.protocol.current_size is None
            ):
                count = heartbeat_frames(data)
                if count:
                    sink.heartbeat(count)
                    return
        super().data_received(data)
