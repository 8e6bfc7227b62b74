"""A cascade probe: does RTP published at central reach a subscriber on each relay?

What an operator wants to know before a meeting, checked the way a meeting
uses the nodes: a throwaway room on central and on each relay, a synthetic
video feed published at central by an aiortc peer (as the chair's console
would), the same remote-publisher link the cascade makes (`Cascade.link`)
from central to each relay, and an aiortc subscriber on each relay (as a
site would) waiting for its first decoded frame. Everything is torn down
afterwards, whatever happened. The probe's peers reach the nodes' RTP ports
directly (no TURN), like a chair PC: run it where the control server runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack, VideoStreamTrack

from diemcau.media.cascade import Cascade, RemoteLink
from diemcau.media.control import NodeControl
from diemcau.media.janus import JanusConnection, JanusHandle, JanusSession
from diemcau.media.node import JanusNode
from diemcau.media.rights import control_token

__all__ = ["ProbeResult", "probe_cascade"]

VIDEOROOM = "janus.plugin.videoroom"


@dataclass(frozen=True)
class ProbeResult:
    """What one relay's subscriber saw: a decoded frame (ok) or why not, and when."""

    ok: bool
    detail: str
    ms: float


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:160]


class _Peer:
    """One aiortc peer connection with its own Janus socket, session and handle."""

    def __init__(self, node: JanusNode, room: int) -> None:
        self.node = node
        self.room = room
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.conn: JanusConnection | None = None
        self.session: JanusSession | None = None
        self.first_frame: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.tasks: list[asyncio.Task[None]] = []

    async def open(self, timeout: float) -> JanusHandle:
        url = self.node.ws_url
        self.conn = await JanusConnection.connect(
            url,
            token=self.node.control_token,
            timeout=timeout,
            ssl_context=self.node.ssl_context() if url.startswith("wss:") else None,
        )
        self.session = await self.conn.create_session()
        return await self.session.attach(VIDEOROOM)

    def room_token(self) -> str:
        """The control plane's own token: the probe acts as the control plane, and a
        room's allowed list admits no other publisher (docs/media.md)."""
        return control_token(self.node, self.room)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.pc.close(), 5.0)
        if self.session is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.session.destroy(), 2.0)
        if self.conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.conn.close(), 2.0)


async def _publish(peer: _Peer, feed: int, timeout: float) -> None:
    handle = await peer.open(timeout)
    join = {"request": "join", "ptype": "publisher", "room": peer.room, "id": feed}
    await handle.send({**join, "display": "diemcau-check", "token": peer.room_token()})
    peer.pc.addTrack(VideoStreamTrack())
    await peer.pc.setLocalDescription(await peer.pc.createOffer())
    offer = peer.pc.localDescription
    reply = await handle.send(
        {"request": "publish", "bitrate": 300_000},
        jsep={"type": offer.type, "sdp": offer.sdp},
        timeout=timeout,
    )
    if reply.jsep is None:
        raise RuntimeError("central answered publish without an SDP answer")
    await peer.pc.setRemoteDescription(RTCSessionDescription(**reply.jsep))
    await handle.wait_event(lambda m: m.get("janus") == "webrtcup", timeout)


async def _subscribe(peer: _Peer, feed: int, timeout: float) -> None:
    @peer.pc.on("track")
    def _on_track(track: MediaStreamTrack) -> None:
        async def first() -> None:
            with contextlib.suppress(Exception):
                await track.recv()
                if not peer.first_frame.done():
                    peer.first_frame.set_result(time.monotonic())

        peer.tasks.append(asyncio.ensure_future(first()))

    handle = await peer.open(timeout)
    body = {"request": "join", "ptype": "subscriber", "room": peer.room}
    reply = await handle.send({**body, "streams": [{"feed": feed}], "token": peer.room_token()})
    if reply.jsep is None:
        raise RuntimeError("the relay offered no SDP for the remote feed")
    await peer.pc.setRemoteDescription(RTCSessionDescription(**reply.jsep))
    await peer.pc.setLocalDescription(await peer.pc.createAnswer())
    answer = peer.pc.localDescription
    await handle.send({"request": "start"}, jsep={"type": answer.type, "sdp": answer.sdp})


async def _streams(
    ctl: NodeControl, room: int, feed: int, timeout: float
) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        streams = await ctl.feed_streams(room, feed)
        if streams:
            return list(streams)
        await asyncio.sleep(0.1)
    raise TimeoutError("the probe's feed never showed its streams at central")


async def _relay_leg(
    cascade: Cascade,
    link: RemoteLink,
    relay: JanusNode,
    streams: list[dict[str, object]],
    timeout: float,
) -> ProbeResult:
    t0 = time.monotonic()
    peer = _Peer(relay, link.target_room)
    try:
        try:
            await cascade.link(link, streams)
        except Exception as exc:
            return ProbeResult(False, f"remote publisher not made: {_short(exc)}", 0.0)
        try:
            await asyncio.wait_for(_subscribe(peer, link.feed_id, timeout), timeout)
            at = await asyncio.wait_for(peer.first_frame, timeout)
        except Exception as exc:
            return ProbeResult(False, f"no frame at the relay: {_short(exc)}", 0.0)
        ms = (at - t0) * 1000
        return ProbeResult(True, "first frame decoded by a subscriber", ms)
    finally:
        await peer.close()


async def probe_cascade(
    central: JanusNode, relays: Sequence[JanusNode], *, timeout: float = 10.0
) -> dict[str, ProbeResult]:
    """Per relay name: whether a feed published at central reached a subscriber there.

    A relay whose throwaway room cannot be created (a wrong ``admin_key``, a node
    down) fails alone; a failure at central fails every relay with its reason.
    """
    controls = {n.name: NodeControl(n, timeout=timeout) for n in [central, *relays]}
    nodes = {n.name: n for n in [central, *relays]}
    cascade = Cascade(lambda name: controls[name], lambda name: nodes[name].rtp_host)
    room = secrets.randbits(47) | 1
    feed = secrets.randbits(47) | 1
    made: list[str] = []
    results: dict[str, ProbeResult] = {}
    publisher: _Peer | None = None
    try:
        try:
            await controls[central.name].ensure_room(room, "diemcau check")
            made.append(central.name)
            publisher = _Peer(central, room)
            await asyncio.wait_for(_publish(publisher, feed, timeout), timeout)
            streams = await _streams(controls[central.name], room, feed, timeout)
        except Exception as exc:
            why = f"publisher on {central.name}: {_short(exc)}"
            return {r.name: ProbeResult(False, why, 0.0) for r in relays}
        legs: dict[str, asyncio.Task[ProbeResult]] = {}
        for relay in relays:
            try:
                await controls[relay.name].ensure_room(room, "diemcau check")
            except Exception as exc:
                results[relay.name] = ProbeResult(False, f"room not made: {_short(exc)}", 0.0)
                continue
            made.append(relay.name)
            link = RemoteLink(central.name, room, feed, relay.name, room, "diemcau-check")
            legs[relay.name] = asyncio.ensure_future(
                _relay_leg(cascade, link, relay, streams, timeout)
            )
        for name, task in legs.items():
            results[name] = await task
        return results
    finally:
        for link in list(cascade.records):
            with contextlib.suppress(Exception):
                await cascade.unlink(link)
        if publisher is not None:
            await publisher.close()
        for name in made:
            with contextlib.suppress(Exception):
                await controls[name].destroy_room(room)
        for ctl in controls.values():
            with contextlib.suppress(Exception):
                await ctl.close()
