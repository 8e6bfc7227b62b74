"""aiortc bots that meet Janus as a browser would: a publisher and a decoding viewer.

- `PublisherBot` joins a VideoRoom as a publisher with stamped video
  (`diemcau.sim.tracks.StampedVideoTrack`) and a sine tone.
- `ViewerBot` subscribes to one feed, decodes it, reads every frame's stamp back
  (`diemcau.sim.stamps`) and records glass-to-glass latency, first-frame time and
  whose frames arrive.

Each bot has its own WebSocket, a core token and a room token, like a site's browser
(docs/media.md, "Bots"). Tests, the demo and bench/media.py use them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field

import av
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError

from diemcau.media.grants import ChairGrant, SiteGrant, WallGrant, WatchGrant
from diemcau.media.inspection import CallGrant
from diemcau.media.isolation import in_isolated_netns, restrict_aioice_to_media_addr
from diemcau.media.janus import JanusConnection, JanusHandle, JanusSession, objects
from diemcau.records import JsonObject
from diemcau.sim.stamps import StampVerdict, inspect_stamp, label_code, now_ms32
from diemcau.sim.tracks import StampedVideoTrack, ToneAudioTrack, pin_vp8_bitrate

__all__ = ["JanusTarget", "PublisherBot", "ViewerBot", "ViewerStats"]

VIDEO_PLUGIN = "janus.plugin.videoroom"


def _prepare_ice() -> None:
    # Inside the isolated namespace aioice must gather only the media address.
    if in_isolated_netns():
        restrict_aioice_to_media_addr()


@dataclass(frozen=True)
class JanusTarget:
    """Where and how a bot reaches a VideoRoom, as a site's media grant says.

    Attributes:
        ws_url: the node's Janus API WebSocket.
        room: the VideoRoom id.
        token: the core token (sessions + VideoRoom), if the node needs one.
        room_token: the token the ``join`` carries: the grant's room token to
            watch, its publish token to publish (docs/media.md, "Who may publish
            and watch").
        pin: the room's pin, if it has one (program rooms).
    """

    ws_url: str
    room: int
    token: str | None = None
    room_token: str | None = None
    pin: str | None = None

    @classmethod
    def publish_of(cls, grant: SiteGrant | ChairGrant | CallGrant) -> JanusTarget:
        """Where a grant publishes: its ``publish`` room, with its publish token."""
        pub = grant["publish"]
        return cls(grant["ws_url"], pub["room"], grant["token"], pub["token"])

    @classmethod
    def program_of(cls, grant: SiteGrant | ChairGrant) -> JanusTarget:
        """Where a grant watches the program: its ``program`` room, token and pin."""
        prog = grant["program"]
        if prog is None:
            raise ValueError("this grant watches no program (none runs)")
        return cls(grant["ws_url"], prog["room"], grant["token"], grant["room_token"], prog["pin"])

    @classmethod
    def watch_of(cls, grant: WatchGrant | WallGrant, room: int | None = None) -> JanusTarget:
        """Where a spot-check (its ``subscribe`` room) or a wall grant (``room``) watches."""
        if room is None:
            sub = grant["subscribe"]
            if isinstance(sub, list):
                raise ValueError("a wall grant watches several rooms: name one")
            room = sub["room"]
        return cls(grant["ws_url"], room, grant["token"], grant["room_token"])


async def _received(track: MediaStreamTrack) -> AsyncIterator[object]:
    """What a received track delivers, until it ends."""
    while True:
        try:
            yield await track.recv()
        except MediaStreamError:
            return


class _Bot:
    """Shared plumbing: one WebSocket, one session, one VideoRoom handle, one PC."""

    def __init__(self, target: JanusTarget) -> None:
        _prepare_ice()
        self.target = target
        self.conn: JanusConnection | None = None
        self.session: JanusSession | None = None
        self.handle: JanusHandle | None = None
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self._tasks: list[asyncio.Task[None]] = []
        self.joined_at = 0.0
        self.connected_at = 0.0
        # The streams Janus answered the join with (a subscriber's mids and feeds).
        self.streams: list[JsonObject] = []

    async def _open(self) -> JanusHandle:
        self.conn = await JanusConnection.connect(self.target.ws_url, token=self.target.token)
        self.session = await self.conn.create_session()
        self.handle = await self.session.attach(VIDEO_PLUGIN)
        return self.handle

    def _join_body(self, **fields: object) -> JsonObject:
        body: JsonObject = {"request": "join", "room": self.target.room, **fields}
        if self.target.room_token is not None:
            body["token"] = self.target.room_token
        if self.target.pin is not None:
            body["pin"] = self.target.pin
        return body

    async def wait_webrtcup(self, timeout: float = 10.0) -> None:
        assert self.handle is not None
        await self.handle.wait_event(lambda m: m.get("janus") == "webrtcup", timeout)
        self.connected_at = time.monotonic()

    async def stop(self) -> None:
        """Leave the room, close the PC and the socket (idempotent)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        # Every step is bounded: aiortc's close can wait forever on a transport
        # whose peer is gone, and a bot must never hang the test or demo stopping it.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.pc.close(), 5.0)
        if self.session is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.session.destroy(), 2.0)
            self.session = None
        if self.conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.conn.close(), 2.0)
            self.conn = None


class PublisherBot(_Bot):
    """Publishes stamped video (and a tone) as feed ``feed_id`` in a VideoRoom."""

    def __init__(
        self,
        target: JanusTarget,
        feed_id: int,
        label: str,
        *,
        audio: bool = True,
        tone_hz: float = 440.0,
        bitrate: int = 400_000,
        speech_like: bool = False,
        join_fields: Mapping[str, object] | None = None,
        publish_fields: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(target)
        pin_vp8_bitrate(bitrate)
        self.feed_id = feed_id
        self.label = label
        self.bitrate = bitrate
        # Extra fields of the join and publish requests, as a hostile browser may send
        # them (``joinandconfigure``, ``record``, ``filename``): tests of media rights.
        self.join_fields = dict(join_fields or {})
        self.publish_fields = dict(publish_fields or {})
        self.video = StampedVideoTrack(label)
        self.audio = ToneAudioTrack(tone_hz, speech_like=speech_like) if audio else None

    async def start(self, timeout: float = 10.0) -> None:
        """Join as publisher, publish, and wait until Janus reports the PC up."""
        handle = await self._open()
        await handle.send(
            self._join_body(
                ptype="publisher", id=self.feed_id, display=self.label, **self.join_fields
            ),
            timeout=timeout,
        )
        self.joined_at = time.monotonic()
        if self.audio is not None:
            self.pc.addTrack(self.audio)
        self.pc.addTrack(self.video)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        offer = self.pc.localDescription
        reply = await handle.send(
            {
                "request": "publish",
                "bitrate": self.bitrate,
                "display": self.label,
                **self.publish_fields,
            },
            jsep={"type": offer.type, "sdp": offer.sdp},
            timeout=timeout,
        )
        if reply.jsep is None:
            raise RuntimeError("Janus answered publish without an SDP answer")
        await self.pc.setRemoteDescription(
            RTCSessionDescription(sdp=reply.jsep["sdp"], type=reply.jsep["type"])
        )
        await self.wait_webrtcup(timeout)


@dataclass
class ViewerStats:
    """What a viewer saw.

    Attributes:
        frames: frames whose stamp read back (``ok``).
        bad_frames: frames whose stamp is clear but wrong (``corrupt``): content that
            was never sent together, a real error on the path.
        unreadable_frames: frames whose stamp could not be read (``unreadable``).
    """

    frames: int = 0
    bad_frames: int = 0
    unreadable_frames: int = 0
    first_frame_at: float = 0.0
    last_frame_at: float = 0.0
    audio_frames: int = 0
    first_audio_at: float = 0.0
    latencies_ms: list[int] = field(default_factory=list)
    labels: dict[int, int] = field(default_factory=dict)
    last_label: int | None = None


class ViewerBot(_Bot):
    """Subscribes to one feed, decodes it and checks every frame's stamp."""

    def __init__(self, target: JanusTarget, feed_id: int) -> None:
        super().__init__(target)
        self.feed_id = feed_id
        self.stats = ViewerStats()
        self._frame_event = asyncio.Event()
        # Called for every good frame with its arrival (monotonic seconds), its
        # sender's label code, and when it was sent (the stamp's wall-clock time
        # brought onto the monotonic clock: frames decoded late are told apart).
        self.on_frame: Callable[[float, int, float], None] | None = None

        @self.pc.on("track")
        def _on_track(track: MediaStreamTrack) -> None:
            reader = self._read_video if track.kind == "video" else self._read_audio
            self._tasks.append(asyncio.ensure_future(reader(track)))

    async def start(self, timeout: float = 10.0) -> None:
        """Subscribe, answer Janus's offer, and wait until the PC is up."""
        handle = await self._open()
        self.joined_at = time.monotonic()
        reply = await handle.send(
            self._join_body(ptype="subscriber", streams=[{"feed": self.feed_id}]),
            timeout=timeout,
        )
        if reply.jsep is None:
            raise RuntimeError("Janus answered the subscription without an SDP offer")
        self.streams = objects(reply.data, "streams")
        await self.pc.setRemoteDescription(
            RTCSessionDescription(sdp=reply.jsep["sdp"], type=reply.jsep["type"])
        )
        # Answer as the DTLS server (setup:passive): Janus then sends the
        # ClientHello once its own ICE is ready. As the client, aiortc's
        # ClientHello sometimes reaches Janus before that and is lost, and
        # OpenSSL retransmits only after 1 s (a ~1 s join in one of three).
        for transceiver in self.pc.getTransceivers():
            transceiver.receiver.transport._set_role("server")
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        answer = self.pc.localDescription
        await handle.send(
            {"request": "start"}, jsep={"type": answer.type, "sdp": answer.sdp}, timeout=timeout
        )
        await self.wait_webrtcup(timeout)

    async def _read_video(self, track: MediaStreamTrack) -> None:
        async for frame in _received(track):
            assert isinstance(frame, av.VideoFrame)
            now_ms = now_ms32()
            reading = inspect_stamp(frame.to_ndarray(format="gray"))
            st = self.stats
            now = time.monotonic()
            stamp = reading.stamp
            if stamp is None:
                if reading.verdict is StampVerdict.CORRUPT:
                    st.bad_frames += 1
                else:
                    st.unreadable_frames += 1
                continue
            st.frames += 1
            if not st.first_frame_at:
                st.first_frame_at = now
            st.last_frame_at = now
            latency_ms = (now_ms - stamp.sent_ms) & 0xFFFFFFFF
            st.latencies_ms.append(latency_ms)
            st.labels[stamp.label] = st.labels.get(stamp.label, 0) + 1
            st.last_label = stamp.label
            self._frame_event.set()
            if self.on_frame is not None:
                self.on_frame(now, stamp.label, now - latency_ms / 1000)

    async def _read_audio(self, track: MediaStreamTrack) -> None:
        async for frame in _received(track):
            assert isinstance(frame, av.AudioFrame)
            pcm = frame.to_ndarray()
            if float(np.abs(pcm.astype(np.int32)).mean()) > 500:
                self.stats.audio_frames += 1
                if not self.stats.first_audio_at:
                    self.stats.first_audio_at = time.monotonic()

    async def wait_frames(
        self, count: int, timeout: float = 5.0, *, label: str | None = None
    ) -> float:
        """Wait until ``count`` more good frames (from ``label``, if given) arrive.

        Returns the monotonic time the last of them arrived.
        """
        code = label_code(label) if label is not None else None

        def seen() -> int:
            if code is None:
                return self.stats.frames
            return self.stats.labels.get(code, 0)

        target = seen() + count
        deadline = time.monotonic() + timeout
        while seen() < target:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"viewer of feed {self.feed_id}: frames did not arrive")
            self._frame_event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._frame_event.wait(), remaining)
        return self.stats.last_frame_at

    async def wait_audio(self, timeout: float = 5.0) -> float:
        """Wait for the first non-silent audio frame; returns when it came."""
        seen = f"viewer of feed {self.feed_id}: no audio"
        await self._wait_until(lambda: bool(self.stats.first_audio_at), timeout, seen, 0.01)
        return self.stats.first_audio_at

    @staticmethod
    async def _wait_until(
        done: Callable[[], bool], timeout: float, failed: str, step: float
    ) -> None:
        """Poll ``done`` every ``step`` seconds; `TimeoutError` (``failed``) after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError(failed)
            await asyncio.sleep(step)
