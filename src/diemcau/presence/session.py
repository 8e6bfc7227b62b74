"""One site's live control session: its socket, cursors, limits and inbound loop.

A session writes prebuilt WebSocket frames straight to its transport (no
per-site encoding, no task per message) and checks the transport's write
buffer after each write: a site that does not read closes with
``SLOW_READER`` once more than `send_buffer_bytes` wait for it, so a slow
reader costs bounded memory and never slows anyone else down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

from pydantic import ValidationError
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from diemcau.accounts.service import SitePrincipal
from diemcau.presence.protocol import (
    Ack,
    Bye,
    CloseCode,
    Heartbeat,
    Hello,
    Link,
    LinkReport,
    Request,
    close_reason,
    parse_inbound,
    ws_text_frame,
)
from diemcau.ratelimit import RateLimiter

__all__ = ["SiteSession", "SessionEvents", "RequestSink", "CLOSE_REASONS"]

log = logging.getLogger(__name__)

# Offline reason recorded for each way a session ends.
CLOSE_REASONS: dict[int, str] = {
    CloseCode.NORMAL: "left",
    CloseCode.GOING_AWAY: "server_shutdown",
    CloseCode.TOO_BIG: "message_too_big",
    CloseCode.BAD_MESSAGE: "bad_message",
    CloseCode.UNAUTHORIZED: "unauthorized",
    CloseCode.BAD_VERSION: "bad_version",
    CloseCode.REVOKED: "credential_revoked",
    CloseCode.REPLACED: "replaced",
    CloseCode.SLOW_READER: "slow_reader",
    CloseCode.HEARTBEAT_TIMEOUT: "heartbeat_timeout",
    CloseCode.RATE_LIMITED: "rate_limited",
    CloseCode.CLOSED_BY_OPERATOR: "closed_by_operator",
}

_MAX_INFLIGHT_REQUESTS = 8


class SessionEvents(Protocol):
    """Who learns that a session ended or reported its link (the session lifecycle)."""

    def session_closed(self, session: SiteSession, reason: str, *, detail: str = "") -> None: ...

    def link_report(self, session: SiteSession, link: LinkReport) -> None: ...


class RequestSink(Protocol):
    """Who answers a session's requests (the request router)."""

    def submit(self, session: SiteSession, req: Request) -> None:
        """Run `req` for `session`, now or when its turn comes; `request_done` after."""
        ...

    def reply_error(self, session: SiteSession, req_id: str, code: str, message: str) -> None: ...


class SiteSession:
    """The live session of one authenticated site.

    Attributes:
        principal: who this is.
        cursors: per stream name as the site sees it, the last seq written to it.
        last_seen: monotonic time of the last inbound frame (heartbeat timeout).
        offline_after_s: silence after which the session is cut (per protocol version).
        replaying: while True, fan-out goes to `backlog` instead of the socket, so
            live messages that arrive during a resume are not lost nor reordered.
    """

    # Slots: 10,799 of these live at once; every byte per site counts (docs/performance.md).
    __slots__ = (
        "events",
        "requests",
        "conn",
        "principal",
        "site_id",
        "_monotonic",
        "last_seen",
        "limiter",
        "send_buffer_bytes",
        "cursors",
        "replaying",
        "backlog",
        "closed",
        "close_reason",
        "pending_requests",
        "_closing",
        "offline_after_s",
    )

    def __init__(
        self,
        events: SessionEvents,
        requests: RequestSink,
        conn: ServerConnection,
        principal: SitePrincipal,
        *,
        rate: float,
        burst: float,
        send_buffer_bytes: int,
        offline_after_s: float = 2.5,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.events = events
        self.requests = requests
        self.conn = conn
        self.principal = principal
        self.site_id = principal.site_id
        self._monotonic = monotonic
        self.last_seen = monotonic()
        self.limiter = RateLimiter(rate, burst, self.last_seen)
        self.send_buffer_bytes = send_buffer_bytes
        self.cursors: dict[str, int] = {}
        self.replaying = True
        self.backlog: list[tuple[str, int, bytes]] = []
        self.closed = False
        self.close_reason = ""
        # Requests of this site received and not ended (waiting ones included).
        self.pending_requests = 0
        self._closing: asyncio.Task[None] | None = None
        # Silence allowed before the site counts as gone (its protocol version's timing).
        self.offline_after_s = offline_after_s

    # --- outbound ---------------------------------------------------------------------------

    def write_frame(self, frame: bytes) -> bool:
        """Write a complete WebSocket frame; closes the session if it reads too slowly."""
        if self.closed:
            return False
        conn = self.conn
        if conn.protocol.state is not State.OPEN:
            return False
        transport = conn.transport
        transport.write(frame)
        if transport.get_write_buffer_size() > self.send_buffer_bytes:
            self.close(
                CloseCode.SLOW_READER,
                f"send queue over {self.send_buffer_bytes} bytes: the site does not read",
            )
            return False
        return True

    def write_payload(self, payload: bytes) -> bool:
        return self.write_frame(ws_text_frame(payload))

    def deliver(self, stream: str, seq: int, frame: bytes) -> None:
        """Deliver one sequenced frame once, in order (duplicates are skipped)."""
        if self.replaying:
            self.backlog.append((stream, seq, frame))
            return
        if seq <= self.cursors.get(stream, 0):
            return
        self.cursors[stream] = seq
        self.write_frame(frame)

    def finish_replay(self) -> None:
        """Leave replay mode: flush live messages that arrived meanwhile, skipping duplicates."""
        self.replaying = False
        backlog, self.backlog = self.backlog, []
        for stream, seq, frame in backlog:
            self.deliver(stream, seq, frame)

    def close(self, code: int, reason: str) -> None:
        """Close this session (idempotent); presence is updated at once."""
        if self.closed:
            return
        self.closed = True
        self.close_reason = CLOSE_REASONS.get(code, "closed")
        self.events.session_closed(self, self.close_reason, detail=reason)
        self._closing = asyncio.get_running_loop().create_task(self._close_socket(code, reason))

    async def _close_socket(self, code: int, reason: str) -> None:
        try:
            await self.conn.close(code, close_reason(reason))
        except Exception:  # the peer may be gone already; the socket is aborted anyway
            self.conn.transport.abort()

    # --- inbound ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Read frames until the socket ends or the session is closed."""
        conn = self.conn
        try:
            while not self.closed:
                data = await conn.recv(decode=False)
                self.on_frame(data)
        except ConnectionClosed as exc:
            if not self.closed:
                code = exc.rcvd.code if exc.rcvd is not None else None
                if exc.sent is not None and exc.sent.code == CloseCode.TOO_BIG:
                    reason = "message_too_big"
                elif code in (CloseCode.NORMAL, CloseCode.GOING_AWAY):
                    reason = "left"
                else:
                    reason = "connection_lost"
                self.closed = True
                self.close_reason = reason
                self.events.session_closed(self, reason, detail=str(exc))
        finally:
            # Requests in flight run to their end (their writes commit or roll back
            # whole); their replies go nowhere. The router drains them at stop.
            if self._closing is not None:
                # Let our close frame (code and reason) go out before the handler
                # returns, or the library would close with a plain 1000.
                await asyncio.shield(self._closing)

    def heartbeat(self, count: int) -> None:
        """`count` plain heartbeats the connection's fast path took (`SiteConnection`)."""
        if self.closed:
            return
        now = self.last_seen = self._monotonic()
        if not self.limiter.allow(now, count):
            self.close(CloseCode.RATE_LIMITED, "too many messages: rate limit exceeded")

    def on_frame(self, data: bytes | str) -> None:
        """Handle one inbound frame (validated, rate limited)."""
        now = self._monotonic()
        self.last_seen = now
        if not self.limiter.allow(now):
            self.close(CloseCode.RATE_LIMITED, "too many messages: rate limit exceeded")
            return
        try:
            msg = parse_inbound(data)
        except ValidationError as exc:
            first = exc.errors()[0] if exc.errors() else {"msg": "invalid"}
            where = ".".join(str(p) for p in first.get("loc", ()))
            self.close(CloseCode.BAD_MESSAGE, f"malformed message: {where} {first['msg']}")
            return
        if isinstance(msg, Heartbeat):
            if msg.link is not None:
                self.events.link_report(self, msg.link)
        elif isinstance(msg, Link):
            self.events.link_report(self, msg.link)
        elif isinstance(msg, Request):
            if self.pending_requests >= _MAX_INFLIGHT_REQUESTS:
                self.requests.reply_error(self, msg.id, "busy", "too many requests in flight")
                return
            self.pending_requests += 1
            self.requests.submit(self, msg)
        elif isinstance(msg, Ack):
            return
        elif isinstance(msg, Bye):
            self.close(CloseCode.NORMAL, "bye")
        elif isinstance(msg, Hello):
            self.close(CloseCode.BAD_MESSAGE, "hello sent twice")

    def request_done(self) -> None:
        """A request of this site ended, or was dropped before it started."""
        self.pending_requests -= 1

    def info(self) -> dict[str, int | str]:
        peer = self.conn.remote_address
        return {"site_id": self.site_id, "peer": str(peer[0]) if peer else ""}
