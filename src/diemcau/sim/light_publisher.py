"""A publisher that never encodes: a pre-encoded VP8 + Opus loop sent through real WebRTC.

Capacity runs (bench/media.py, "every site publishing") need hundreds of sites
publishing at once; an aiortc `PublisherBot` encodes every frame with libvpx, and
even fed encoded frames aiortc spends ~100 µs of Python per packet (packetizer,
RTP object, SRTP, ICE send through a coroutine), more than the Janus work the
bot is meant to cause. So a `LightPublisher`:

- lets aiortc negotiate ICE, DTLS-SRTP and RTCP exactly as for any publisher
  (its tracks never yield, so aiortc's own RTP sender idles);
- sends RTP itself from one `RtpPacer` task per process: a short clip
  (`PreEncodedClip.make`: 320x240 VP8 at 30 fps, ~150 kbps, a keyframe every
  2 s, like a site's low simulcast layer, and 20 ms Opus frames) encoded once
  per process and cut into RTP payloads once; per packet only a 12-byte
  header is written, the SRTP session aiortc negotiated protects it (libsrtp)
  and it goes to the ICE-selected socket (~10 µs);
- answers a keyframe request by jumping to the next keyframe of the loop.
"""

from __future__ import annotations

import asyncio
import fractions
import math
import random
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import NoReturn

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCRtpSender
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.mediastreams import MediaStreamError

from diemcau.sim.janus_bots import JanusTarget, PublisherBot
from diemcau.sim.stamps import HEIGHT, WIDTH
from diemcau.sim.tracks import AUDIO_RATE, FPS, StampedVideoTrack

__all__ = ["LightPublisher", "PreEncodedClip", "RtpPacer", "process_pacer"]

_VIDEO_CLOCK = 90000
_AUDIO_FRAME = 960  # 20 ms at 48 kHz


@dataclass(frozen=True)
class PreEncodedClip:
    """Encoded frames of a looped clip: VP8 frames at `FPS`, 20 ms Opus frames."""

    video: tuple[bytes, ...]
    audio: tuple[bytes, ...]
    video_bps: float
    audio_bps: float

    @cached_property
    def video_payloads(self) -> tuple[tuple[bytes, ...], ...]:
        """Each VP8 frame cut into RTP payloads (descriptor with a picture id to overwrite)."""
        return tuple(tuple(Vp8Encoder._packetize(f, 0)) for f in self.video)

    @property
    def packet_rate(self) -> float:
        """RTP packets per second one publisher of this clip sends (video + audio)."""
        video = sum(len(p) for p in self.video_payloads) / len(self.video_payloads) * FPS
        return video + AUDIO_RATE / _AUDIO_FRAME

    @cached_property
    def keyframes(self) -> tuple[int, ...]:
        """Indices of the VP8 keyframes (frame tag bit 0 clear)."""
        return tuple(i for i, f in enumerate(self.video) if not f[0] & 1)

    @classmethod
    def make(
        cls,
        label: str = "LIGHT",
        *,
        seconds: float = 4.0,
        video_bps: int = 130_000,
        keyframe_s: float = 2.0,
        audio_bps: int = 32_000,
        size: tuple[int, int] = (WIDTH, HEIGHT),
    ) -> PreEncodedClip:
        """Encode ``seconds`` of stamped video and a tone once (~0.3 s of CPU).

        The default is a site's low simulcast layer; a program feed (the chair)
        is ``video_bps=450_000, size=(640, 360)``.
        """
        frames = int(seconds * FPS)
        enc = av.CodecContext.create("libvpx", "w")
        assert isinstance(enc, av.VideoCodecContext)
        enc.width, enc.height, enc.pix_fmt = size[0], size[1], "yuv420p"
        enc.time_base = fractions.Fraction(1, FPS)
        enc.framerate = fractions.Fraction(FPS, 1)
        enc.bit_rate = video_bps
        enc.gop_size = max(1, int(keyframe_s * FPS))
        enc.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
        src = StampedVideoTrack(label)
        rng = np.random.default_rng(7)
        video: list[bytes] = []
        for i in range(frames):
            # Noise in the lower part keeps the encoder at its bitrate, as a camera does.
            luma = np.zeros((size[1], size[0]), dtype=np.uint8)
            h, w = min(HEIGHT, size[1]), min(WIDTH, size[0])
            luma[:h, :w] = src.frame_at(i, 0).to_ndarray(format="gray")[:h, :w]
            noisy = luma[size[1] * 2 // 3 :, :]
            noisy[:] = rng.integers(60, 200, size=noisy.shape, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(luma, format="gray").reformat(format="yuv420p")
            frame.pts = i
            frame.time_base = enc.time_base
            video += [bytes(p) for p in enc.encode(frame)]
        video += [bytes(p) for p in enc.encode(None)]
        aenc = av.CodecContext.create("libopus", "w")
        assert isinstance(aenc, av.AudioCodecContext)
        aenc.sample_rate = AUDIO_RATE
        aenc.layout = "mono"
        aenc.format = "s16"
        aenc.bit_rate = audio_bps
        aenc.options = {"vbr": "constrained"}
        aenc.time_base = fractions.Fraction(1, AUDIO_RATE)
        audio: list[bytes] = []
        n = int(seconds * AUDIO_RATE / _AUDIO_FRAME)
        for i in range(n):
            t = (np.arange(_AUDIO_FRAME) + i * _AUDIO_FRAME) / AUDIO_RATE
            pcm = (np.sin(2 * math.pi * 440 * t) * 8000).astype(np.int16)
            af = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
            af.sample_rate = AUDIO_RATE
            af.pts = i * _AUDIO_FRAME
            af.time_base = aenc.time_base
            audio += [bytes(p) for p in aenc.encode(af)]
        return cls(
            tuple(video),
            tuple(audio),
            8 * sum(map(len, video)) / (len(video) / FPS),
            8 * sum(map(len, audio)) / (len(audio) * _AUDIO_FRAME / AUDIO_RATE),
        )


class _IdleTrack(MediaStreamTrack):
    """A track that never yields: aiortc's own sender waits while `RtpPacer` sends."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._stopped = asyncio.Event()

    async def recv(self) -> NoReturn:
        await self._stopped.wait()
        raise MediaStreamError

    def stop(self) -> None:
        self._stopped.set()
        super().stop()


@dataclass
class _Stream:
    """One outgoing RTP stream of a publisher, sent by the pacer."""

    sender: RTCRtpSender
    payload_type: int
    ssrc: int
    frames: tuple[tuple[bytes, ...], ...]
    step: int  # RTP timestamp units per frame
    period: float  # seconds per frame
    keyframes: tuple[int, ...] = ()
    index: int = 0
    seq: int = field(default_factory=lambda: random.randrange(1 << 16))
    timestamp: int = field(default_factory=lambda: random.randrange(1 << 32))
    picture_id: int = field(default_factory=lambda: random.randrange(1 << 15))
    next_at: float = 0.0

    def packets(self) -> list[bytes]:
        """The RTP packets of the next frame (clear), and advance."""
        if self.keyframes and getattr(self.sender, "_RTCRtpSender__force_keyframe", False):
            # A keyframe request (PLI/FIR): jump to the next keyframe of the loop.
            setattr(self.sender, "_RTCRtpSender__force_keyframe", False)  # noqa: B010
            here = self.index % len(self.frames)
            later = [k for k in self.keyframes if k >= here]
            self.index += (later[0] if later else len(self.frames) + self.keyframes[0]) - here
        payloads = self.frames[self.index % len(self.frames)]
        out = []
        for i, payload in enumerate(payloads):
            marker = 0x80 if i == len(payloads) - 1 and self.keyframes else 0
            header = struct.pack(
                "!BBHII", 0x80, marker | self.payload_type, self.seq, self.timestamp, self.ssrc
            )
            if self.keyframes:  # VP8: this frame's picture id (15 bits, M set)
                payload = payload[:2] + struct.pack("!H", 0x8000 | self.picture_id) + payload[4:]
            out.append(header + payload)
            self.seq = (self.seq + 1) & 0xFFFF
        self.timestamp = (self.timestamp + self.step) & 0xFFFFFFFF
        self.picture_id = (self.picture_id + 1) & 0x7FFF
        self.index += 1
        return out


class RtpPacer:
    """Sends every light publisher's frames of this process from one task.

    Once a publisher's PeerConnection is up, its RTP bypasses aiortc's sender:
    each frame's packets are built from the clip's pre-packetized payloads,
    protected with the SRTP session aiortc negotiated (libsrtp) and written
    to the ICE-selected socket. One task for all publishers of the process, a
    10 ms tick; publishers start at random points of the clip so their
    keyframes do not line up. aiortc still answers RTCP (it sees Janus's
    receiver reports and keyframe requests; a request makes the pacer jump
    to the next keyframe of the loop).
    """

    TICK = 0.01

    def __init__(self) -> None:
        self._streams: dict[int, list[tuple[_Stream, Callable[[bytes], None]]]] = {}
        self._task: asyncio.Task[None] | None = None
        self.sent_packets = 0

    def add(self, key: int, streams: list[tuple[_Stream, Callable[[bytes], None]]]) -> None:
        now = time.monotonic()
        for st, _send in streams:
            st.next_at = now + random.random() * st.period
        self._streams[key] = streams
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="rtp-pacer")

    def remove(self, key: int) -> None:
        self._streams.pop(key, None)

    async def _run(self) -> None:
        while self._streams:
            now = time.monotonic()
            for streams in list(self._streams.values()):
                for st, send in streams:
                    while st.next_at <= now:
                        for pkt in st.packets():
                            try:
                                send(pkt)
                                self.sent_packets += 1
                            except (OSError, AttributeError):
                                pass  # the PC is closing
                        st.next_at += st.period
                        if now - st.next_at > 1.0:  # the process stalled: skip, no burst
                            st.next_at = now
            await asyncio.sleep(self.TICK)


_PACER: RtpPacer | None = None


def process_pacer() -> RtpPacer:
    """The pacer shared by every light publisher of this process."""
    global _PACER
    if _PACER is None:
        _PACER = RtpPacer()
    return _PACER


def _socket_sender(sender: RTCRtpSender) -> Callable[[bytes], None]:
    """Protect with the negotiated SRTP session, write to the ICE-selected socket."""
    dtls = sender.transport
    srtp = dtls._tx_srtp
    pair = dtls.transport._connection._nominated[1]
    transport, addr = pair.protocol.transport, pair.remote_addr

    def send(packet: bytes) -> None:
        transport.sendto(srtp.protect(packet), addr)

    return send


class LightPublisher(PublisherBot):
    """A publisher whose RTP is a `PreEncodedClip`, sent by the process's `RtpPacer`.

    aiortc negotiates ICE, DTLS and SRTP and answers RTCP; its own sender
    idles (`_IdleTrack`), so no frame is encoded or re-packetized per packet.
    """

    def __init__(
        self,
        target: JanusTarget,
        feed_id: int,
        label: str,
        clip: PreEncodedClip,
        pacer: RtpPacer | None = None,
    ) -> None:
        super().__init__(target, feed_id, label, bitrate=int(clip.video_bps))
        self.clip = clip
        self.pacer = pacer or process_pacer()
        self.video = _IdleTrack("video")  # type: ignore[assignment]
        self.audio = _IdleTrack("audio")  # type: ignore[assignment]

    async def start(self, timeout: float = 10.0) -> None:
        await super().start(timeout)
        deadline = time.monotonic() + timeout
        streams: list[tuple[_Stream, Callable[[bytes], None]]] = []
        for tr in self.pc.getTransceivers():
            sender = tr.sender
            while sender.transport._tx_srtp is None:  # our DTLS side still finishing
                if time.monotonic() > deadline:
                    raise TimeoutError("light publisher: DTLS did not complete")
                await asyncio.sleep(0.01)
            pt = int(tr._codecs[0].payloadType or 0)
            if tr.kind == "video":
                st = _Stream(
                    sender,
                    pt,
                    sender._ssrc,
                    self.clip.video_payloads,
                    _VIDEO_CLOCK // FPS,
                    1 / FPS,
                    self.clip.keyframes,
                    index=random.randrange(len(self.clip.video_payloads)),
                )
            else:
                st = _Stream(
                    sender,
                    pt,
                    sender._ssrc,
                    tuple((a,) for a in self.clip.audio),
                    _AUDIO_FRAME,
                    _AUDIO_FRAME / AUDIO_RATE,
                )
            streams.append((st, _socket_sender(sender)))
        self.pacer.add(id(self), streams)

    async def stop(self) -> None:
        self.pacer.remove(id(self))
        await super().stop()
