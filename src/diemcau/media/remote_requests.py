"""The control plane's requests that carry a feed from one node's room to another's.

A feed reaches another node as a remote publisher there (``add_remote_publisher``,
which checks only the room secret in 1.1.2), fed either by a remotization of a
local publisher (``publish_remotely``) or by plain RTP forwarders
(``rtp_forward``, which 1.1.2 allows for remote publishers too: how central
passes a floor speaker on to the relays, `cascade.RemoteLink.via`).
`forward_streams` builds the forwarders' streams with the SSRCs a remote
publisher expects.
"""

from __future__ import annotations

from dataclasses import dataclass

from diemcau.media.control_link import ERR_NO_SUCH_FEED, ERR_NO_SUCH_ROOM, ControlLink
from diemcau.media.janus import JanusError, integer, objects
from diemcau.records import JsonObject

__all__ = ["Forwarder", "RemoteRequests", "forward_streams"]

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


def forward_streams(streams: list[JsonObject], port: int, rtcp_port: int) -> list[JsonObject]:
    """The ``rtp_forward`` streams that feed a remote publisher at ``port``.

    Each stream keeps its payload type and gets the SSRC the remote publisher
    expects for its ``mindex`` (simulcast layers: +1, +2 on the same port, as
    ``publish_remotely`` sends them); the first video stream pairs RTCP with the
    remote publisher's ``rtcp_port`` so its keyframe requests come back.
    """
    out: list[JsonObject] = []
    rtcp_done = False
    for s in streams:
        if s.get("type") not in ("audio", "video"):
            continue
        mindex = s["mindex"]
        if not isinstance(mindex, int):
            raise ValueError(f"a stream without a numeric mindex: {s}")
        ssrc = REMOTE_SSRC_BASE + REMOTE_SSRC_STEP * mindex
        f: JsonObject = {"mid": str(s["mid"]), "port": port, "ssrc": ssrc}
        if s["type"] == "video":
            if not rtcp_done:
                f["rtcp_port"] = rtcp_port
                rtcp_done = True
            if s.get("simulcast"):
                f.update(port_2=port, ssrc_2=ssrc + 1, port_3=port, ssrc_3=ssrc + 2)
        out.append(f)
    return out


class RemoteRequests(ControlLink):
    """Remote publishers of one node's rooms and what feeds them, made and undone."""

    async def _request_unless_gone(self, body: JsonObject) -> None:
        """A request that undoes something: done already when its room or feed is gone."""
        try:
            await self.request(body)
        except JanusError as exc:
            if exc.code not in (ERR_NO_SUCH_ROOM, ERR_NO_SUCH_FEED):
                raise

    async def add_remote_publisher(
        self, room: int, feed_id: int, display: str, streams: list[JsonObject]
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
        return integer(data, "port"), integer(data, "rtcp_port")

    async def remove_remote_publisher(self, room: int, feed_id: int) -> None:
        await self._request_unless_gone(
            {
                "request": "remove_remote_publisher",
                "room": room,
                "secret": self.room_secret,
                "id": feed_id,
            }
        )

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
        await self._request_unless_gone(
            {
                "request": "unpublish_remotely",
                "room": room,
                "secret": self.room_secret,
                "admin_key": self.node.admin_key,
                "publisher_id": feed_id,
                "remote_id": remote_id,
            }
        )

    async def list_forwarders(self, room: int) -> list[tuple[int, int]]:
        """Plain RTP forwarders in a room, as (publisher id, stream id).

        diemcau never makes plain forwarders (remotizations are not listed
        here), so any found is an orphan from elsewhere.
        """
        return [(f.publisher_id, f.stream_id) for f in await self.forwarders(room)]

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
                integer(p, "publisher_id"),
                integer(f, "stream_id"),
                str(f.get("host", "")).removeprefix("::ffff:"),
                integer(f, "port"),
            )
            for p in objects(data, "publishers")
            for f in objects(p, "forwarders")
        ]

    async def rtp_forward(
        self, room: int, publisher_id: int, host: str, streams: list[JsonObject]
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
        return tuple(integer(f, "stream_id") for f in objects(data, "forwarders"))

    async def stop_forwarder(self, room: int, publisher_id: int, stream_id: int) -> None:
        await self._request_unless_gone(
            {
                "request": "stop_rtp_forward",
                "room": room,
                "secret": self.room_secret,
                "admin_key": self.node.admin_key,
                "publisher_id": publisher_id,
                "stream_id": stream_id,
            }
        )

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
        return [str(r["remote_id"]) for r in objects(data, "list")]
