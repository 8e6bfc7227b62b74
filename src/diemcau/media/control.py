"""The control plane's hand on one node's VideoRoom: rooms, feeds, remote publishers.

One `NodeControl` per node keeps one API connection, one session and one
VideoRoom handle for synchronous requests (reconnecting when the node comes
back). Each node holds a small sentinel room of the control plane's; when the
connection drops, the reconnect makes sure it exists, and having to create it
again means the node restarted in between and lost every room and remote
publisher, which `on_restart` then reports (a node restarted by its
supervisor within a second is never seen down by the health checks; and a
dropped socket alone is no restart: Janus keeps rooms, though it ends the
socket's sessions at once, so a session cannot tell). Every room it creates
carries a room ``secret`` derived from the node's plugin ``admin_key``:
``add_remote_publisher`` checks only the room secret in 1.1.2 (no
``admin_key`` check, docs/media.md), so browsers must never learn it.
Rooms are private (hidden from ``list`` without the admin key) and require
signed room tokens to join.

`ensure_room` is the one place room options are set (docs/media.md, "Who may
publish and watch"): every room gets an ``allowed`` list (the control plane's own
token and the publish tokens it is given: no other publisher ``join`` passes),
``lock_record`` with the room secret (a publisher's ``configure``/``publish``
cannot switch recording on) and a ``rec_dir`` that cannot exist
(`NO_RECORDING_DIR`), because 1.1.2 does not apply ``lock_record`` to
``joinandconfigure``: a publisher asking to record there with its own file name
gets nothing written anywhere. Recording is the control plane's alone: only
`start_recording` (which needs the room secret) points a room at a real folder
(docs/recording.md), and only in rooms no browser publishes into. A program room
also gets a ``pin`` (`set_pin`).

Janus VideoRoom API: https://janus.conf.meetecho.com/docs/videoroom.html
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from diemcau.media.janus import (
    JanusClosedError,
    JanusConnection,
    JanusError,
    JanusHandle,
    JanusSession,
)
from diemcau.media.node import JanusNode
from diemcau.media.rights import VIDEOROOM, control_token

__all__ = [
    "ERR_ID_EXISTS",
    "ERR_NO_SUCH_FEED",
    "ERR_NO_SUCH_ROOM",
    "ERR_ROOM_EXISTS",
    "NO_RECORDING_DIR",
    "Forwarder",
    "NodeControl",
    "RoomInfo",
    "forward_streams",
]

log = logging.getLogger(__name__)

ERR_NO_SUCH_ROOM = 426
ERR_ROOM_EXISTS = 427
ERR_NO_SUCH_FEED = 428
# The sentinel room's id: above every 48-bit id derived from a name (orchestrator).
SENTINEL_ROOM = 0x7E57_0000_0001 << 4
# Stream fields a remote publisher must repeat from its source: what it is
# (type, mindex, mid, codec), how it is layered, and the Opus options that set
# the subscribers' SDP (in-band FEC above all: without "fec" a relay's viewers
# are offered Opus without useinbandfec).
_STREAM_KEYS = ("type", "mindex", "mid", "codec", "simulcast", "svc", "fec", "stereo", "dtx")
ERR_ID_EXISTS = 436
# A remote publisher tells its streams apart by SSRC: base + 10 * mindex (+ the
# simulcast substream), the values ``publish_remotely`` writes (janus_videoroom.c).
REMOTE_SSRC_BASE = 1000
REMOTE_SSRC_STEP = 10


@dataclass(frozen=True)
class Forwarder:
    """One plain RTP forwarder of a publisher's stream (``listforwarders``)."""

    publisher_id: int
    stream_id: int
    host: str
    port: int


def forward_streams(
    streams: list[dict[str, Any]], port: int, rtcp_port: int
) -> list[dict[str, Any]]:
    """The ``rtp_forward`` streams that feed a remote publisher at ``port``.

    Each stream keeps its payload type and gets the SSRC the remote publisher
    expects for its ``mindex`` (simulcast layers: +1, +2 on the same port, as
    ``publish_remotely`` sends them); the first video stream pairs RTCP with the
    remote publisher's ``rtcp_port`` so its keyframe requests come back.
    """
    out: list[dict[str, Any]] = []
    rtcp_done = False
    for s in streams:
        if s.get("type") not in ("audio", "video"):
            continue
        ssrc = REMOTE_SSRC_BASE + REMOTE_SSRC_STEP * int(s["mindex"])
        f: dict[str, Any] = {"mid": str(s["mid"]), "port": port, "ssrc": ssrc}
        if s["type"] == "video":
            if not rtcp_done:
                f["rtcp_port"] = rtcp_port
                rtcp_done = True
            if s.get("simulcast"):
                f.update(port_2=port, ssrc_2=ssrc + 1, port_3=port, ssrc_3=ssrc + 2)
        out.append(f)
    return out


# A folder Janus can never create (its parent is a character device): a room
# pointed at it records nothing, whoever asks.
NO_RECORDING_DIR = "/dev/null/diemcau-recording-off"


@dataclass(frozen=True)
class RoomInfo:
    """A room as ``list`` shows it to the admin key: enough to tell ours from stale ones."""

    room: int
    description: str
    lock_record: bool
    pin_required: bool


class NodeControl:
    """Synchronous VideoRoom requests against one node, as the control plane."""

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

    async def request(self, body: dict[str, Any]) -> dict[str, Any]:
        """One synchronous VideoRoom request; raises `JanusError`."""
        handle = await self._ensure()
        try:
            reply = await handle.send(body, timeout=self._timeout)
        except JanusClosedError:
            await self.reset()
            raise
        return reply.data

    def control_token(self, room: int) -> str:
        """The control plane's own publisher token for ``room`` (in every allowed list)."""
        return control_token(self.node, room)

    def _join_secrets(self, room: int) -> dict[str, str]:
        """What a control-plane ``join`` of ``room`` carries: its token, and its pin if any."""
        fields = {"token": self.control_token(room)}
        pin = self.pins.get(room)
        if pin is not None:
            fields["pin"] = pin
        return fields

    async def ensure_room(
        self,
        room: int,
        description: str,
        *,
        publishers: int = 6,
        allowed: Sequence[str] = (),
        pin: str | None = None,
        notify_joining: bool = False,
    ) -> bool:
        """Create the room unless it exists; returns whether it was created.

        Args:
            publishers: how many may publish at once.
            allowed: the publish tokens of whoever may publish here besides the
                control plane (`rights.publish_token`). Empty: remote publishers
                only (the control plane adds them with the room secret), as in a
                program room.
            pin: the room's pin, asked of every ``join`` (viewers included).
            notify_joining: the publisher is told when any participant joins or
                leaves (how a site learns it is being watched, `looks`).

        A room that exists already keeps its options (see `set_pin`).
        """
        options: dict[str, Any] = {
            "request": "create",
            "room": room,
            "admin_key": self.node.admin_key,
            "secret": self.room_secret,
            "description": description[:120],
            "is_private": True,
            "signed_tokens": True,
            "allowed": [self.control_token(room), *allowed],
            "lock_record": True,
            "rec_dir": NO_RECORDING_DIR,
            "publishers": publishers,
            "audiocodec": "opus",
            "videocodec": "vp8",
            "notify_joining": notify_joining,
            "bitrate": 0,
            # Opus in-band FEC negotiated with every publisher and viewer (the
            # default of 1.1.2, said here since older versions differ).
            "opus_fec": True,
        }
        if pin is not None:
            options["pin"] = pin
        try:
            await self.request(options)
        except JanusError as exc:
            if exc.code == ERR_ROOM_EXISTS:
                return False
            raise
        if pin is not None:
            self.pins[room] = pin
        return True

    async def allowed(self, room: int) -> set[str]:
        """The room's allowed list (``allowed`` ``enable``: the check stays on)."""
        data = await self.request(
            {"request": "allowed", "room": room, "secret": self.room_secret, "action": "enable"}
        )
        return {str(t) for t in data.get("allowed", [])}

    async def set_pin(self, room: int, pin: str) -> None:
        """Give an existing room a new pin: later joins need it, present viewers stay."""
        await self.request(
            {"request": "edit", "room": room, "secret": self.room_secret, "new_pin": pin}
        )
        self.pins[room] = pin

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
        """Destroy a room: every participant in it is kicked, its lists go with it."""
        try:
            await self.request({"request": "destroy", "room": room, "secret": self.room_secret})
        except JanusError as exc:
            if exc.code != ERR_NO_SUCH_ROOM:
                raise
        self.pins.pop(room, None)

    async def rooms(self) -> list[int]:
        return [info.room for info in await self.room_infos()]

    async def room_infos(self) -> list[RoomInfo]:
        """Every room on the node (private ones too: the admin key asks)."""
        data = await self.request({"request": "list", "admin_key": self.node.admin_key})
        return [
            RoomInfo(
                int(r["room"]),
                str(r.get("description", "")),
                bool(r.get("lock_record")),
                bool(r.get("pin_required")),
            )
            for r in data.get("list", [])
            if int(r["room"]) != SENTINEL_ROOM  # the control plane's own (`_sentinel`)
        ]

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
                    **self._join_secrets(room),
                },
                timeout=self._timeout,
            )
        finally:
            await handle.detach()
        for pub in reply.data.get("publishers", []):
            if int(pub.get("id", -1)) == feed_id:
                streams: list[dict[str, Any]] = [
                    {k: s[k] for k in _STREAM_KEYS if k in s}
                    for s in pub.get("streams", [])
                    if not s.get("disabled")
                ]
                return streams or None
        return None

    async def join_silently(self, room: int, participant_id: int, display: str) -> JanusHandle:
        """Join ``room`` as a participant that never publishes; detach the handle to leave.

        In a ``notify_joining`` room its publisher sees it come and go (`looks`).
        """
        await self._ensure()
        assert self._session is not None
        handle = await self._session.attach(VIDEOROOM)
        try:
            await handle.send(
                {
                    "request": "join",
                    "ptype": "publisher",
                    "room": room,
                    "id": participant_id,
                    "display": display,
                    **self._join_secrets(room),
                },
                timeout=self._timeout,
            )
        except BaseException:
            await handle.detach()
            raise
        return handle

    def holds(self, handle: JanusHandle) -> bool:
        """Whether ``handle`` still belongs to this control's live session."""
        return (
            self._session is not None
            and handle.session is self._session
            and self._conn is not None
            and not self._conn.closed.is_set()
        )

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

    async def forwarders(self, room: int) -> list[Forwarder]:
        """Every plain RTP forwarder in a room, with where it sends."""
        try:
            data = await self.request(
                {"request": "listforwarders", "room": room, "secret": self.room_secret}
            )
        except JanusError as exc:
            if exc.code == ERR_NO_SUCH_ROOM:
                return []
            raise
        return [
            Forwarder(
                int(p["publisher_id"]),
                int(f["stream_id"]),
                str(f.get("host", "")).removeprefix("::ffff:"),
                int(f["port"]),
            )
            for p in data.get("publishers", [])
            for f in p.get("forwarders", [])
        ]

    async def rtp_forward(
        self, room: int, publisher_id: int, host: str, streams: list[dict[str, Any]]
    ) -> tuple[int, ...]:
        """Forward a publisher's streams (local or remote) as plain RTP; returns stream ids.

        Janus 1.1.2 forwards remote publishers too (``publish_remotely`` refuses
        them), which is how central passes a floor speaker on to the relays.
        """
        data = await self.request(
            {
                "request": "rtp_forward",
                "room": room,
                "publisher_id": publisher_id,
                "host": host,
                "streams": streams,
                "secret": self.room_secret,
                "admin_key": self.node.admin_key,
            }
        )
        return tuple(int(f["stream_id"]) for f in data.get("forwarders", []))

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
