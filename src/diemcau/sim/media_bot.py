"""aiortc media bots standing in for sites and the chair in tests, demo and bench.

- `PublisherBot` joins a VideoRoom as a publisher with a synthetic video track
  whose frames carry, as black/white pixel blocks, the sender's wall-clock
  time in ms (32 bits + complement) and a 32-bit code of its label (+
  complement), plus a sine tone on audio.
- `ViewerBot` subscribes to one feed, decodes, reads the blocks back and
  records glass-to-glass latency, first-frame time and whose frames arrive.
- `LightReceiver` subscribes without decoding (counts RTP packets, bytes and
  sequence gaps): a real subscriber for Janus, cheap for the bot machine, so
  capacity runs measure Janus and not aiortc's decoder (DESIGN.md §6).

All bots talk to Janus as a browser would: their own WebSocket, a short-lived
core token and a room token.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import math
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.codecs import vpx
from aiortc.mediastreams import MediaStreamError

from diemcau.media.isolation import in_isolated_netns, restrict_aioice_to_media_addr
from diemcau.media.janus import JanusConnection, JanusHandle, JanusSession

__all__ = [
    "FrameStamp",
    "JanusTarget",
    "LightReceiver",
    "PublisherBot",
    "ViewerBot",
    "label_code",
    "pin_vp8_bitrate",
    "read_stamp",
]

WIDTH, HEIGHT = 320, 240
BLOCK = 10  # 32 blocks of 10 px fill one 320-px row
FPS = 30
AUDIO_RATE = 48000
AUDIO_SAMPLES = 960  # 20 ms
VIDEO_PLUGIN = "janus.plugin.videoroom"


def _prepare_ice() -> None:
    # Inside the isolated namespace aioice must gather only the media address.
    if in_isolated_netns():
        restrict_aioice_to_media_addr()


def pin_vp8_bitrate(bps: int) -> None:
    """Pin aiortc's VP8 bitrate for this process.

    aiortc's encoder silently recreates itself (a keyframe) whenever the
    bandwidth estimate moves by >10 %, which hides keyframe-request bugs
    (DESIGN.md §6); clamping min = max = default keeps it on one bitrate.
    """
    vpx.DEFAULT_BITRATE = vpx.MIN_BITRATE = vpx.MAX_BITRATE = bps


def label_code(label: str) -> int:
    """The 32-bit code drawn into every frame of the bot labelled ``label``."""
    return zlib.crc32(label.encode()) & 0xFFFFFFFF


def _now_ms32() -> int:
    return int(time.time() * 1000) & 0xFFFFFFFF


def _draw_word(luma: np.ndarray[Any, Any], row: int, word: int) -> None:
    for bit in range(32):
        on = (word >> (31 - bit)) & 1
        luma[row * BLOCK : (row + 1) * BLOCK, bit * BLOCK : (bit + 1) * BLOCK] = 235 if on else 16


def _read_word(luma: np.ndarray[Any, Any], row: int) -> int:
    y0 = row * BLOCK + BLOCK // 2 - 2
    word = 0
    for bit in range(32):
        x0 = bit * BLOCK + BLOCK // 2 - 2
        v = float(luma[y0 : y0 + 4, x0 : x0 + 4].mean())
        word = (word << 1) | (1 if v > 125 else 0)
    return word


# A 3x5 pixel font (rows top to bottom) so a human watching a bot's video can
# read which site it is. Text is folded to ASCII capitals first.
_GLYPHS: dict[str, str] = {
    "0": "### #.# #.# #.# ###",
    "1": ".#. ##. .#. .#. ###",
    "2": "### ..# ### #.. ###",
    "3": "### ..# ### ..# ###",
    "4": "#.# #.# ### ..# ..#",
    "5": "### #.. ### ..# ###",
    "6": "### #.. ### #.# ###",
    "7": "### ..# ..# ..# ..#",
    "8": "### #.# ### #.# ###",
    "9": "### #.# ### ..# ###",
    "A": ".#. #.# ### #.# #.#",
    "B": "##. #.# ##. #.# ##.",
    "C": "### #.. #.. #.. ###",
    "D": "##. #.# #.# #.# ##.",
    "E": "### #.. ### #.. ###",
    "F": "### #.. ### #.. #..",
    "G": "### #.. #.# #.# ###",
    "H": "#.# #.# ### #.# #.#",
    "I": "### .#. .#. .#. ###",
    "J": "..# ..# ..# #.# ###",
    "K": "#.# #.# ##. #.# #.#",
    "L": "#.. #.. #.. #.. ###",
    "M": "#.# ### ### #.# #.#",
    "N": "##. #.# #.# #.# #.#",
    "O": "### #.# #.# #.# ###",
    "P": "### #.# ### #.. #..",
    "Q": "### #.# #.# ### ..#",
    "R": "### #.# ##. #.# #.#",
    "S": "### #.. ### ..# ###",
    "T": "### .#. .#. .#. .#.",
    "U": "#.# #.# #.# #.# ###",
    "V": "#.# #.# #.# #.# .#.",
    "W": "#.# #.# ### ### #.#",
    "X": "#.# #.# .#. #.# #.#",
    "Y": "#.# #.# .#. .#. .#.",
    "Z": "### ..# .#. #.. ###",
    "-": "... ... ### ... ...",
    " ": "... ... ... ... ...",
    ".": "... ... ... ... .#.",
}
TEXT_SCALE = 3
TEXT_TOP = 60


def draw_text(luma: np.ndarray[Any, Any], text: str, top: int = TEXT_TOP) -> None:
    """Draw ``text`` (folded to ASCII capitals) in white on a black band."""
    from diemcau.text import fold

    chars = fold(text).upper()[: WIDTH // (4 * TEXT_SCALE)]
    band = 5 * TEXT_SCALE
    luma[top - 4 : top + band + 4, :] = 16
    for i, ch in enumerate(chars):
        rows = _GLYPHS.get(ch, _GLYPHS["."]).split()
        x0 = 4 + i * 4 * TEXT_SCALE
        for r, row in enumerate(rows):
            for c, px in enumerate(row):
                if px == "#":
                    y = top + r * TEXT_SCALE
                    x = x0 + c * TEXT_SCALE
                    luma[y : y + TEXT_SCALE, x : x + TEXT_SCALE] = 235


@dataclass(frozen=True)
class FrameStamp:
    """What a frame says about itself: send time (ms, 32-bit wall clock) and sender."""

    sent_ms: int
    label: int


def make_frame_luma(
    sent_ms: int, label: int, shade: int, background: np.ndarray[Any, Any] | None = None
) -> np.ndarray[Any, Any]:
    """A yuv420p plane stack with the stamp blocks on the first four block rows.

    ``background`` (a prepared luma plane, e.g. with the site's name drawn)
    fills the rest; otherwise a flat ``shade``.
    """
    img = np.full((HEIGHT * 3 // 2, WIDTH), 128, dtype=np.uint8)
    luma = img[:HEIGHT]
    if background is not None:
        luma[:] = background
    else:
        luma[4 * BLOCK :, :] = shade
    _draw_word(luma, 0, sent_ms)
    _draw_word(luma, 1, ~sent_ms & 0xFFFFFFFF)
    _draw_word(luma, 2, label)
    _draw_word(luma, 3, ~label & 0xFFFFFFFF)
    return img


def read_stamp(luma: np.ndarray[Any, Any]) -> FrameStamp | None:
    """Read the blocks back; ``None`` when a complement does not match (corrupt frame)."""
    if luma.shape[0] < 4 * BLOCK or luma.shape[1] < 32 * BLOCK:
        return None
    ts, nts, lab, nlab = (_read_word(luma, r) for r in range(4))
    if ts ^ nts != 0xFFFFFFFF or lab ^ nlab != 0xFFFFFFFF:
        return None
    return FrameStamp(ts, lab)


class StampedVideoTrack(MediaStreamTrack):
    """Synthetic video whose every frame carries its send time and the sender's code."""

    kind = "video"

    def __init__(self, label: str) -> None:
        super().__init__()
        self._code = label_code(label)
        self._start: float | None = None
        self._count = 0
        self._background = np.full((HEIGHT, WIDTH), 90, dtype=np.uint8)
        draw_text(self._background, label)

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._count += 1
            wait = self._start + self._count / FPS - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        # A moving bar keeps the encoder busy like a real camera, a little.
        bg = self._background.copy()
        x = (self._count * 4) % WIDTH
        bg[HEIGHT - 40 :, x : x + 16] = 200
        img = make_frame_luma(_now_ms32(), self._code, 0, bg)
        frame = av.VideoFrame.from_ndarray(img, format="yuv420p")
        frame.pts = self._count * (90000 // FPS)
        frame.time_base = fractions.Fraction(1, 90000)
        return frame


class ToneAudioTrack(MediaStreamTrack):
    """A continuous sine tone (s16 mono 48 kHz, 20 ms frames)."""

    kind = "audio"

    def __init__(self, freq: float = 440.0) -> None:
        super().__init__()
        self._freq = freq
        self._start: float | None = None
        self._samples = 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            wait = self._start + self._samples / AUDIO_RATE - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        t = (np.arange(AUDIO_SAMPLES) + self._samples) / AUDIO_RATE
        pcm = (np.sin(2 * math.pi * self._freq * t) * 8000).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = self._samples
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        self._samples += AUDIO_SAMPLES
        return frame


@dataclass(frozen=True)
class JanusTarget:
    """Where and how a bot reaches a VideoRoom, as a site's media grant says.

    Attributes:
        ws_url: the node's Janus API WebSocket.
        room: the VideoRoom id.
        token: the core token (sessions + VideoRoom), if the node needs one.
        room_token: the VideoRoom token naming this room, if the room needs one.
    """

    ws_url: str
    room: int
    token: str | None = None
    room_token: str | None = None


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

    async def _open(self) -> JanusHandle:
        self.conn = await JanusConnection.connect(self.target.ws_url, token=self.target.token)
        self.session = await self.conn.create_session()
        self.handle = await self.session.attach(VIDEO_PLUGIN)
        return self.handle

    def _join_body(self, **fields: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"request": "join", "room": self.target.room, **fields}
        if self.target.room_token is not None:
            body["token"] = self.target.room_token
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
    ) -> None:
        super().__init__(target)
        pin_vp8_bitrate(bitrate)
        self.feed_id = feed_id
        self.label = label
        self.bitrate = bitrate
        self.video = StampedVideoTrack(label)
        self.audio = ToneAudioTrack(tone_hz) if audio else None

    async def start(self, timeout: float = 10.0) -> None:
        """Join as publisher, publish, and wait until Janus reports the PC up."""
        handle = await self._open()
        await handle.send(
            self._join_body(ptype="publisher", id=self.feed_id, display=self.label),
            timeout=timeout,
        )
        self.joined_at = time.monotonic()
        if self.audio is not None:
            self.pc.addTrack(self.audio)
        self.pc.addTrack(self.video)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        offer = self.pc.localDescription
        reply = await handle.send(
            {"request": "publish", "bitrate": self.bitrate, "display": self.label},
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
    """What a viewer saw."""

    frames: int = 0
    bad_frames: int = 0
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
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            assert isinstance(frame, av.VideoFrame)
            now_ms = _now_ms32()
            luma = frame.to_ndarray(format="gray")
            stamp = read_stamp(luma)
            st = self.stats
            now = time.monotonic()
            if stamp is None:
                st.bad_frames += 1
                continue
            st.frames += 1
            if not st.first_frame_at:
                st.first_frame_at = now
            st.last_frame_at = now
            st.latencies_ms.append((now_ms - stamp.sent_ms) & 0xFFFFFFFF)
            st.labels[stamp.label] = st.labels.get(stamp.label, 0) + 1
            st.last_label = stamp.label
            self._frame_event.set()

    async def _read_audio(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
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
        deadline = time.monotonic() + timeout
        while not self.stats.first_audio_at:
            if time.monotonic() > deadline:
                raise TimeoutError(f"viewer of feed {self.feed_id}: no audio")
            await asyncio.sleep(0.01)
        return self.stats.first_audio_at


@dataclass
class RtpCounter:
    """Packets, bytes and sequence-number gaps per SSRC."""

    packets: int = 0
    bytes: int = 0
    first_at: float = 0.0
    _first_seq: dict[int, int] = field(default_factory=dict)
    _max_seq: dict[int, int] = field(default_factory=dict)
    _count: dict[int, int] = field(default_factory=dict)

    def add(self, ssrc: int, seq: int, size: int) -> None:
        if not self.packets:
            self.first_at = time.monotonic()
        self.packets += 1
        self.bytes += size
        if ssrc not in self._first_seq:
            self._first_seq[ssrc] = seq
            self._max_seq[ssrc] = seq
            self._count[ssrc] = 0
        else:
            # unwrap 16-bit sequence numbers against the highest seen
            hi = self._max_seq[ssrc]
            delta = (seq - (hi & 0xFFFF) + 0x8000) % 0x10000 - 0x8000
            if delta > 0:
                self._max_seq[ssrc] = hi + delta
        self._count[ssrc] += 1

    def expected(self) -> int:
        return sum(self._max_seq[s] - self._first_seq[s] + 1 for s in self._first_seq)

    def loss(self) -> float:
        """Fraction of packets missing (0..1), counted from sequence numbers."""
        exp = self.expected()
        if exp <= 0:
            return 0.0
        return max(0.0, 1.0 - sum(self._count.values()) / exp)


class LightReceiver(ViewerBot):
    """A subscriber that never decodes: RTP packets are counted and dropped.

    The PC negotiates and keeps ICE/DTLS/SRTP like any subscriber, so Janus
    does the same work per viewer. Here each packet is decrypted (libsrtp)
    and only its clear header read (sequence number, SSRC): no RTP parsing,
    no jitter buffer, no decoder.
    """

    def __init__(self, target: JanusTarget, feed_id: int) -> None:
        super().__init__(target, feed_id)
        self.counter = RtpCounter()
        self.pc.remove_all_listeners("track")

        @self.pc.on("track")
        def _on_track(track: MediaStreamTrack) -> None:
            counter = self.counter

            async def _count(data: bytes, arrival_time_ms: int) -> None:
                if len(data) >= 12:
                    counter.add(
                        int.from_bytes(data[8:12], "big"),
                        int.from_bytes(data[2:4], "big"),
                        len(data) - 12,
                    )

            for transceiver in self.pc.getTransceivers():
                dtls = transceiver.receiver.transport
                dtls._handle_rtp_data = _count  # type: ignore[method-assign]

    async def wait_packets(self, count: int, timeout: float = 5.0) -> float:
        """Wait until ``count`` more RTP packets arrived; returns when the first ever came."""
        target = self.counter.packets + count
        deadline = time.monotonic() + timeout
        while self.counter.packets < target:
            if time.monotonic() > deadline:
                raise TimeoutError(f"light receiver of feed {self.feed_id}: no packets")
            await asyncio.sleep(0.02)
        return self.counter.first_at


class DemoMedia:
    """Real synthetic media for a live demo: site publishers and a chair per program.

    Each listed site publishes (stamped video with its name, a tone) into its
    uplink room on its relay, so spot-checks and the video wall show it; it
    republishes on its new relay when the orchestrator moves it. For every
    running program a chair bot publishes on central. Everything else in the
    country stays on the control plane only.

    Args:
        orchestrator: a started `MediaOrchestrator` (typed loosely to keep
            ``sim`` free of a hard import cycle).
        site_codes: the sites that get real media (a dozen is plenty on 2 cores).
    """

    def __init__(self, orchestrator: Any, site_codes: list[str], *, interval: float = 1.0) -> None:
        self.orch = orchestrator
        self.site_codes = list(site_codes)
        self.sites: dict[str, tuple[str, PublisherBot]] = {}
        self.chairs: dict[str, PublisherBot] = {}
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.tick()
        self._task = asyncio.create_task(self._loop(), name="demo-media")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.tick()
            except Exception:  # noqa: S112 - a demo bot failing must not stop the others
                continue

    async def tick(self) -> None:
        """Bring bots in line with the orchestrator: one pass."""
        for code in self.site_codes:
            node = self.orch.plan.assignment.get(code)
            have = self.sites.get(code)
            if have is not None and have[0] == node and have[1].pc.connectionState != "failed":
                continue
            if have is not None:
                await have[1].stop()
                del self.sites[code]
            if node is None or not self.orch.registry.is_up(node):
                continue
            grant = await self.orch.site_media_grant(code, next(iter(self.orch.meetings), None))
            bot = PublisherBot(
                JanusTarget(
                    grant["ws_url"], grant["publish"]["room"], grant["token"], grant["room_token"]
                ),
                grant["publish"]["feed_id"],
                code,
                tone_hz=300 + 40 * (len(self.sites) % 10),
            )
            try:
                await bot.start()
            except Exception:
                await bot.stop()
                continue
            self.sites[code] = (node, bot)
        running = set(self.orch.meetings)
        for mid in list(self.chairs):
            if mid not in running:
                await self.chairs.pop(mid).stop()
        for mid in running - set(self.chairs):
            grant = self.orch.chair_media_grant(mid)
            bot = PublisherBot(
                JanusTarget(
                    grant["ws_url"], grant["publish"]["room"], grant["token"], grant["room_token"]
                ),
                grant["publish"]["feed_id"],
                "CHU TRI",
                tone_hz=220,
            )
            try:
                await bot.start()
            except Exception:
                await bot.stop()
                continue
            self.chairs[mid] = bot

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for _, bot in self.sites.values():
            await bot.stop()
        for bot in self.chairs.values():
            await bot.stop()
        self.sites.clear()
        self.chairs.clear()
