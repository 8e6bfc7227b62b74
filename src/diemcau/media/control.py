"""The control plane's hand on one node's VideoRoom: rooms, feeds, remote publishers.

One `NodeControl` per node keeps one API connection, one session and one
VideoRoom handle for synchronous requests (reconnecting when the node comes
back). Every room it creates carries a room ``secret`` derived from the node's
plugin ``admin_key``: ``add_remote_publisher`` checks only the room secret in
1.1.2 (no ``admin_key`` check, docs/media.md), so browsers must never learn it.
Rooms are private (hidden from ``list`` without the admin key) and require
signed room tokens to join.

Recording is the control plane's alone: every room is created with
``lock_record`` (a publisher's ``configure``/``publish`` cannot switch it on) and
a ``rec_dir`` that cannot exist (`NO_RECORDING_DIR`), because 1.1.2 does not
apply ``lock_record`` to ``joinandconfigure``: a publisher asking to record there
with its own file name gets nothing written anywhere. Only `start_recording`
(which needs the room secret) points a room at a real folder (docs/recording.md).

Janus VideoRoom API: https://janus.conf.meetecho.com/docs/videoroom.html
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

from diemcau.media.janus import (
    JanusClosedError,
    JanusConnection,
    JanusError,
    JanusHandle,
    JanusSession,
    sign_janus_token,
)
from diemcau.media.node import JanusNode

__all__ = [
    "NodeControl",
    "ERR_NO_SUCH_ROOM",
    "ERR_NO_SUCH_FEED",
    "ERR_ROOM_EXISTS",
    "NO_RECORDING_DIR",
]

VIDEOROOM = "janus.plugin.videoroom"
ERR_NO_SUCH_ROOM = 426
ERR_ROOM_EXISTS = 427
ERR_NO_SUCH_FEED = 428
# A folder Janus can never create (its parent is a character device): a room
# pointed at it records nothing, whoever asks.
NO_RECORDING_DIR = "/dev/null/diemcau-recording-off"


class NodeControl:
    """Synchronous VideoRoom requests against one node, as the control plane."""

    def __init__(self, node: JanusNode, *, timeout: float = 5.0) -> None:
        self.node = node
        self._timeout = timeout
        self._conn: JanusConnection | None = None
        self._session: JanusSession | None = None
        self._handle: JanusHandle | None = None
        self._lock = asyncio.Lock()

    @property
    def room_secret(self) -> str:
        """The secret of every room on this node (derived, so it survives restarts)."""
        return hashlib.sha256(f"diemcau-room:{self.node.admin_key}".encode()).hexdigest()[:32]

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
                except BaseException:
                    await conn.close()
                    raise
                self._conn = conn
            return self._handle

    async def reset(self) -> None:
        """Drop the connection (next request reconnects)."""
        conn, self._conn, self._session, self._handle = self._conn, None, None, None
        if conn is not None:
            try:
                await conn.close()
            except Exception:  # noqa: S110 - a dead socket may fail to close; nothing to do
                pass

    async def close(self) -> None:
        if self._session is not None:
            try:
                await asyncio.wait_for(self._session.destroy(), 2.0)
            except (JanusError, TimeoutError):
                pass
        await self.reset()

    async def request(self, body: dict[str, Any]) -> dict[str, Any]:
        """One synchronous VideoRoom request; raises `JanusError`."""
        handle = await self._ensure()
        try:
            reply = await handle.send(body, timeout=self._timeout)
        except JanusClosedError:
            await self.reset()
            raise
        return reply.data

    def _room_token(self, room: int) -> str:
        return sign_janus_token(
            self.node.token_secret, [f"room={room}"], int(time.time()) + 60, realm=VIDEOROOM
        )

    async def ensure_room(
        self, room: int, description: str, *, publishers: int = 6, remote_only: bool = False
    ) -> bool:
        """Create the room unless it exists; returns whether it was created.

        ``remote_only`` rooms get an empty ``allowed`` list: VideoRoom then
        refuses every publisher ``join`` (whatever the token), while
        subscribers (checked against the signed room token) and remote
        publishers (added by the control plane) still work.
        """
        extra: dict[str, Any] = {"allowed": []} if remote_only else {}
        try:
            await self.request(
                {
                    **extra,
                    "request": "create",
                    "room": room,
                    "admin_key": self.node.admin_key,
                    "secret": self.room_secret,
                    "description": description[:120],
                    "is_private": True,
                    "signed_tokens": True,
                    "publishers": publishers,
                    "audiocodec": "opus",
                    "videocodec": "vp8",
                    "notify_joining": False,
                    "bitrate": 0,
                    "lock_record": True,
                    "rec_dir": NO_RECORDING_DIR,
                }
            )
        except JanusError as exc:
            if exc.code == ERR_ROOM_EXISTS:
                return False
            raise
        return True

    async def start_recording(self, room: int, rec_dir: str) -> None:
        """Record every publisher now in ``room`` into ``rec_dir`` (a folder on the node).

        Recording is switched off first, so publishers that arrived since the last
        start are included (1.1.2 starts a publisher's recorder only when the room's
        recording switches on) and each start gets fresh files in the new folder.
        """
        await self.stop_recording(room)
        await self.request(
            {"request": "edit", "room": room, "secret": self.room_secret, "new_rec_dir": rec_dir}
        )
        await self.request(
            {
                "request": "enable_recording",
                "room": room,
                "secret": self.room_secret,
                "record": True,
            }
        )

    async def stop_recording(self, room: int) -> None:
        """Close every recording of ``room`` and point it back at `NO_RECORDING_DIR`."""
        try:
            await self.request(
                {
                    "request": "enable_recording",
                    "room": room,
                    "secret": self.room_secret,
                    "record": False,
                }
            )
            await self.request(
                {
                    "request": "edit",
                    "room": room,
                    "secret": self.room_secret,
                    "new_rec_dir": NO_RECORDING_DIR,
                }
            )
        except JanusError as exc:
            if exc.code != ERR_NO_SUCH_ROOM:
                raise

    async def destroy_room(self, room: int) -> None:
        try:
            await self.request({"request": "destroy", "room": room, "secret": self.room_secret})
        except JanusError as exc:
            if exc.code != ERR_NO_SUCH_ROOM:
                raise

    async def rooms(self) -> list[int]:
        data = await self.request({"request": "list", "admin_key": self.node.admin_key})
        return [int(r["room"]) for r in data.get("list", [])]

    async def participants(self, room: int) -> list[dict[str, Any]]:
        data = await self.request({"request": "listparticipants", "room": room})
        parts: list[dict[str, Any]] = data.get("participants", [])
        return parts

    async def feed_streams(self, room: int, feed_id: int) -> list[dict[str, Any]] | None:
        """The published streams of ``feed_id`` (type, mindex, mid, codec), or None.

        VideoRoom lists a publisher's streams only to participants, so we join
        for a moment as a non-publishing participant (``notify_joining`` is off,
        nobody sees it) and leave.
        """
        await self._ensure()
        assert self._session is not None
        handle = await self._session.attach(VIDEOROOM)
        try:
            reply = await handle.send(
                {
                    "request": "join",
                    "ptype": "publisher",
                    "room": room,
                    "display": "diemcau-control",
                    "token": self._room_token(room),
                },
                timeout=self._timeout,
            )
        finally:
            await handle.detach()
        for pub in reply.data.get("publishers", []):
            if int(pub.get("id", -1)) == feed_id:
                streams: list[dict[str, Any]] = [
                    {
                        k: s[k]
                        for k in ("type", "mindex", "mid", "codec", "simulcast", "svc")
                        if k in s
                    }
                    for s in pub.get("streams", [])
                    if not s.get("disabled")
                ]
                return streams or None
        return None

    async def add_remote_publisher(
        self, room: int, feed_id: int, display: str, streams: list[dict[str, Any]]
    ) -> tuple[int, int]:
        """Make ``feed_id`` a remote publisher here; returns its (port, rtcp_port)."""
        data = await self.request(
            {
                "request": "add_remote_publisher",
                "room": room,
                "secret": self.room_secret,
                "id": feed_id,
                "display": display,
                "iface": self.node.rtp_iface or self.node.rtp_host,
                "streams": streams,
            }
        )
        return int(data["port"]), int(data["rtcp_port"])

    async def remove_remote_publisher(self, room: int, feed_id: int) -> None:
        try:
            await self.request(
                {
                    "request": "remove_remote_publisher",
                    "room": room,
                    "secret": self.room_secret,
                    "id": feed_id,
                }
            )
        except JanusError as exc:
            if exc.code not in (ERR_NO_SUCH_ROOM, ERR_NO_SUCH_FEED):
                raise

    async def publish_remotely(
        self, room: int, feed_id: int, remote_id: str, host: str, port: int, rtcp_port: int
    ) -> None:
        await self.request(
            {
                "request": "publish_remotely",
                "room": room,
                "secret": self.room_secret,
                "admin_key": self.node.admin_key,
                "publisher_id": feed_id,
                "remote_id": remote_id,
                "host": host,
                "port": port,
                "rtcp_port": rtcp_port,
            }
        )

    async def unpublish_remotely(self, room: int, feed_id: int, remote_id: str) -> None:
        try:
            await self.request(
                {
                    "request": "unpublish_remotely",
                    "room": room,
                    "secret": self.room_secret,
                    "admin_key": self.node.admin_key,
                    "publisher_id": feed_id,
                    "remote_id": remote_id,
                }
            )
        except JanusError as exc:
            if exc.code not in (ERR_NO_SUCH_ROOM, ERR_NO_SUCH_FEED):
                raise

    async def list_forwarders(self, room: int) -> list[tuple[int, int]]:
        """Plain RTP forwarders in a room, as (publisher id, stream id).

        diemcau never makes plain forwarders (remotizations are not listed
        here), so any found is an orphan from elsewhere.
        """
        try:
            data = await self.request(
                {"request": "listforwarders", "room": room, "secret": self.room_secret}
            )
        except JanusError as exc:
            if exc.code == ERR_NO_SUCH_ROOM:
                return []
            raise
        return [
            (int(p["publisher_id"]), int(f["stream_id"]))
            for p in data.get("publishers", [])
            for f in p.get("forwarders", [])
        ]

    async def stop_forwarder(self, room: int, publisher_id: int, stream_id: int) -> None:
        try:
            await self.request(
                {
                    "request": "stop_rtp_forward",
                    "room": room,
                    "secret": self.room_secret,
                    "admin_key": self.node.admin_key,
                    "publisher_id": publisher_id,
                    "stream_id": stream_id,
                }
            )
        except JanusError as exc:
            if exc.code not in (ERR_NO_SUCH_ROOM, ERR_NO_SUCH_FEED):
                raise

    async def list_remotes(self, room: int, feed_id: int) -> list[str] | None:
        """The remote ids a local publisher restreams to; None if it is not there."""
        try:
            data = await self.request(
                {
                    "request": "listremotes",
                    "room": room,
                    "secret": self.room_secret,
                    "publisher_id": feed_id,
                }
            )
        except JanusError as exc:
            if exc.code in (ERR_NO_SUCH_ROOM, ERR_NO_SUCH_FEED):
                return None
            raise
        return [str(r["remote_id"]) for r in data.get("list", [])]
