"""The site-session WebSocket server: `websockets` on its own port, same event loop.

The ASGI stack (Starlette under uvicorn) was measured at ~1.7x the bare
library's cost on joins and memory (docs/performance.md), so site sockets are
served by `websockets` directly (no per-message compression, no library
keepalive: the protocol's own heartbeats and ticks do that job once for
everyone), while staff and browsers use the HTTP app. The handler only does the
handshake: hello, authentication, then hands the session to its `SessionHost`.
"""

from __future__ import annotations

import asyncio
import logging
from http import HTTPStatus
from typing import Protocol

from pydantic import ValidationError
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from diemcau.accounts.service import SitePrincipal
from diemcau.presence.config import PresenceConfig
from diemcau.presence.connection import SiteConnection
from diemcau.presence.protocol import (
    MAX_MESSAGE_BYTES,
    PROTOCOL_VERSIONS,
    CloseCode,
    Hello,
    close_reason,
    parse_inbound,
)
from diemcau.presence.session import SiteSession

__all__ = ["PresenceServer", "SessionHost"]

log = logging.getLogger(__name__)


class SessionHost(Protocol):
    """What the server hands an accepted hello to (the session lifecycle)."""

    @property
    def running(self) -> bool: ...

    async def authenticate(self, hello: Hello) -> SitePrincipal | None: ...

    def new_session(self, conn: ServerConnection, principal: SitePrincipal) -> SiteSession: ...

    async def open_session(self, session: SiteSession, hello: Hello) -> None: ...

    def session_closed(self, session: SiteSession, reason: str, *, detail: str = "") -> None: ...


class PresenceServer:
    """Accepts site sockets and hands each authenticated one to a `SessionHost`."""

    def __init__(self, host: SessionHost, config: PresenceConfig) -> None:
        self.host = host
        self.config = config
        self._server: Server | None = None
        self.port = config.port

    async def start(self) -> None:
        cfg = self.config
        self._server = await serve(
            self._handle,
            cfg.host,
            cfg.port,
            process_request=self._check_path,
            max_size=MAX_MESSAGE_BYTES,
            max_queue=32,
            compression=None,
            ping_interval=None,
            close_timeout=2,
            open_timeout=cfg.hello_timeout_s,
            backlog=4096,
            server_header=None,
            ssl=cfg.ssl,
            create_connection=SiteConnection,
        )
        sockets = list(self._server.sockets)
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        scheme = "wss" if cfg.ssl is not None else "ws"
        log.info("site sessions on %s://%s:%s%s", scheme, cfg.host, self.port, cfg.path)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close(close_connections=False)
            try:
                await asyncio.wait_for(self._server.wait_closed(), 5)
            except TimeoutError:
                log.warning("site sockets did not close in time")
            self._server = None

    def _check_path(self, conn: ServerConnection, request: Request) -> Response | None:
        if request.path.split("?", 1)[0] != self.config.path:
            return Response(
                HTTPStatus.NOT_FOUND.value,
                "Not Found",
                Headers([("Content-Length", "10"), ("Content-Type", "text/plain")]),
                b"not found\n",
            )
        return None

    async def _handle(self, conn: ServerConnection) -> None:
        session = await self._open(conn)
        if session is None:
            return
        try:
            if isinstance(conn, SiteConnection):
                conn.heartbeats = session  # plain heartbeats skip the library from now on
                conn.forget_handshake()
            await session.run()
        finally:
            self._ended(conn, session)

    async def _open(self, conn: ServerConnection) -> SiteSession | None:
        """Read and authenticate the hello, then open the session; None if refused.

        A frame of its own: what only the start needs (the parsed hello, ~650 bytes a
        site) is not kept alive by `_handle`'s frame for the session's whole life.
        """
        host = self.host
        hello = await self._read_hello(conn)
        if hello is None:
            return None
        principal = await host.authenticate(hello)
        if principal is None:
            await _close(
                conn, CloseCode.UNAUTHORIZED, "unknown, revoked or outdated site credential"
            )
            return None
        if not host.running:
            await _close(conn, CloseCode.GOING_AWAY, "server shutting down")
            return None
        session = host.new_session(conn, principal)
        try:
            await host.open_session(session, hello)
        except BaseException:
            self._ended(conn, session)
            raise
        return session

    def _ended(self, conn: ServerConnection, session: SiteSession) -> None:
        if isinstance(conn, SiteConnection):
            conn.heartbeats = None  # no cycle left between socket and session
        if not session.closed:
            session.closed = True
            self.host.session_closed(session, "connection_lost")

    async def _read_hello(self, conn: ServerConnection) -> Hello | None:
        """The first message if it is a valid hello; else the socket is closed, None."""
        try:
            async with asyncio.timeout(self.config.hello_timeout_s):  # no extra task per join
                data = await conn.recv(decode=False)
        except TimeoutError:
            await _close(conn, CloseCode.HELLO_TIMEOUT, "no hello in time")
            return None
        except ConnectionClosed:
            return None
        try:
            hello = parse_inbound(data)
        except ValidationError as exc:
            first = exc.errors()[0] if exc.errors() else {"msg": "invalid", "loc": ()}
            where = ".".join(str(p) for p in first.get("loc", ()))
            await _close(conn, CloseCode.BAD_MESSAGE, f"malformed hello: {where} {first['msg']}")
            return None
        if not isinstance(hello, Hello):
            await _close(conn, CloseCode.BAD_MESSAGE, "the first message must be hello")
            return None
        if hello.v not in PROTOCOL_VERSIONS:
            wanted = " or ".join(str(v) for v in PROTOCOL_VERSIONS)
            await _close(conn, CloseCode.BAD_VERSION, f"protocol version {wanted} required")
            return None
        return hello


async def _close(conn: ServerConnection, code: int, reason: str) -> None:
    try:
        await conn.close(code, close_reason(reason))
    except Exception:  # the peer is gone; nothing more to tell it
        log.debug("close failed", exc_info=True)
