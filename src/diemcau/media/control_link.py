"""The control plane's one API connection to a node, which notices the node's restarts.

One `ControlLink` per node keeps one API connection, one session and one
VideoRoom handle for synchronous requests (reconnecting when the node comes
back). Each node holds a small sentinel room of the control plane's; when the
connection drops, the reconnect makes sure it exists, and having to create it
again means the node restarted in between and lost every room and remote
publisher, which `on_restart` then reports (a node restarted by its
supervisor within a second is never seen down by the health checks; and a
dropped socket alone is no restart: Janus keeps rooms, though it ends the
socket's sessions at once, so a session cannot tell). Every room the control
plane creates carries a room ``secret`` derived from the node's plugin
``admin_key`` (`room_secret`): ``add_remote_publisher`` checks only the room
secret in 1.1.2 (no ``admin_key`` check, docs/media.md), so browsers must
never learn it.

The requests themselves are grouped by what they touch (`room_requests`,
`join_requests`, `remote_requests`, `record_requests`); `control.NodeControl`
puts them together over one link.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable

from diemcau.media.janus import (
    JanusClosedError,
    JanusConnection,
    JanusError,
    JanusHandle,
    JanusSession,
)
from diemcau.media.node import JanusNode
from diemcau.media.rights import VIDEOROOM, control_token
from diemcau.records import JsonObject

__all__ = [
    "ERR_ID_EXISTS",
    "ERR_NO_SUCH_FEED",
    "ERR_NO_SUCH_ROOM",
    "ERR_ROOM_EXISTS",
    "NO_RECORDING_DIR",
    "SENTINEL_ROOM",
    "ControlLink",
]

log = logging.getLogger(__name__)

ERR_NO_SUCH_ROOM = 426
ERR_ROOM_EXISTS = 427
ERR_NO_SUCH_FEED = 428
ERR_ID_EXISTS = 436
# The sentinel room's id: above every 48-bit id derived from a name (`ids`).
SENTINEL_ROOM = 0x7E57_0000_0001 << 4
# A folder Janus can never create (its parent is a character device): a room
# pointed at it records nothing, whoever asks.
NO_RECORDING_DIR = "/dev/null/diemcau-recording-off"


class ControlLink:
    """One node's API connection, session and VideoRoom handle, as the control plane."""

    def __init__(
        self,
        node: JanusNode,
        *,
        timeout: float = 5.0,
        on_restart: Callable[[str], None] | None = None,
    ) -> None:
        self.node = node
        self._timeout = timeout
        self._conn: JanusConnection | None = None
        self._session: JanusSession | None = None
        self._handle: JanusHandle | None = None
        self._lock = asyncio.Lock()
        self._on_restart = on_restart
        self._check_next = False
        self.restarts = 0
        # The pins of the rooms that have one (program rooms), as this control set them.
        self.pins: dict[int, str] = {}

    @property
    def room_secret(self) -> str:
        """The secret of every room on this node (derived, so it survives restarts)."""
        return hashlib.sha256(f"diemcau-room:{self.node.admin_key}".encode()).hexdigest()[:32]

    @property
    def connection_lost(self) -> bool:
        """The API connection was open and has closed, or reconnecting failed so far
        (the node may be restarting)."""
        if self._conn is None:
            return self._check_next
        return self._conn.closed.is_set()

    async def _ensure(self) -> JanusHandle:
        async with self._lock:
            if self._conn is not None and self._conn.closed.is_set():
                await self.reset()
            if self._handle is None:
                conn = await JanusConnection.connect(
                    self.node.ws_url,
                    token=self.node.control_token,
                    timeout=self._timeout,
                    ssl_context=(
                        self.node.ssl_context() if self.node.ws_url.startswith("wss:") else None
                    ),
                )
                try:
                    self._session = await conn.create_session()
                    self._handle = await self._session.attach(VIDEOROOM)
                    created = await self._sentinel(self._handle)
                except BaseException:
                    self._session = self._handle = None
                    await conn.close()
                    raise
                self._conn = conn
                check, self._check_next = self._check_next, True
                if created and check:
                    self.restarts += 1
                    log.warning("node %s restarted: its rooms and links are gone", self.node.name)
                    if self._on_restart is not None:
                        self._on_restart(self.node.name)
            return self._handle

    async def _sentinel(self, handle: JanusHandle) -> bool:
        """Create the sentinel room unless it exists; returns whether it had to be created."""
        try:
            await handle.send(
                {
                    "request": "create",
                    "room": SENTINEL_ROOM,
                    "admin_key": self.node.admin_key,
                    "secret": self.room_secret,
                    "description": "diemcau control",
                    "is_private": True,
                    "signed_tokens": True,
                    "publishers": 1,
                    "allowed": [],
                    "lock_record": True,
                    "rec_dir": NO_RECORDING_DIR,
                },
                timeout=self._timeout,
            )
        except JanusError as exc:
            if exc.code == ERR_ROOM_EXISTS:
                return False
            raise
        return True

    async def reset(self, *, check_restart: bool = True) -> None:
        """Drop the connection (next request reconnects).

        With ``check_restart`` the reconnect tells whether the node restarted
        meanwhile (`on_restart`); a caller that already knows passes False.
        """
        conn, self._conn, self._session, self._handle = self._conn, None, None, None
        if not check_restart:
            self._check_next = False
        if conn is not None:
            try:
                await conn.close()
            except Exception:  # noqa: S110 - a dead socket may fail to close; nothing to do
                pass

    async def check(self) -> None:
        """Reconnect now if the connection dropped, so a restart is noticed (and reported)."""
        if self.connection_lost:
            await self._ensure()

    async def close(self) -> None:
        if self._session is not None:
            try:
                await asyncio.wait_for(self._session.destroy(), 2.0)
            except (JanusError, TimeoutError):
                pass
        await self.reset(check_restart=False)

    async def request(self, body: JsonObject) -> JsonObject:
        """One synchronous VideoRoom request; raises `JanusError`."""
        handle = await self._ensure()
        try:
            reply = await handle.send(body, timeout=self._timeout)
        except JanusClosedError:
            await self.reset()
            raise
        return reply.data

    async def _attach(self) -> JanusHandle:
        """A fresh VideoRoom handle on the control session (the caller detaches it)."""
        await self._ensure()
        assert self._session is not None
        return await self._session.attach(VIDEOROOM)

    def holds(self, handle: JanusHandle) -> bool:
        """Whether ``handle`` still belongs to this control's live session."""
        return (
            self._session is not None
            and handle.session is self._session
            and self._conn is not None
            and not self._conn.closed.is_set()
        )

    def control_token(self, room: int) -> str:
        """The control plane's own publisher token for ``room`` (in every allowed list)."""
        return control_token(self.node, room)
