"""Synthetic aiortc media tracks: stamped video with the sender's name, and a sine tone.

The video is 320×240 at 30 fps: the frame stamp on top (`diemcau.sim.stamps`), the
sender's name below it for people watching (`diemcau.sim.glyphs`), and a moving bar at
the bottom that keeps the encoder busy like a real camera, a little.
"""

from __future__ import annotations

import asyncio
import fractions
import math
import time

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.codecs import vpx
from aiortc.mediastreams import MediaStreamError

from diemcau.sim.glyphs import draw_text
from diemcau.sim.stamps import HEIGHT, STAMP_HEIGHT, WIDTH, label_code, make_frame_luma, now_ms32

__all__ = [
    "AUDIO_RATE",
    "FPS",
    "TEXT_TOP",
    "StampedVideoTrack",
    "ToneAudioTrack",
    "pin_vp8_bitrate",
    "tune_opus",
]

FPS = 30
AUDIO_RATE = 48000
AUDIO_SAMPLES = 960  # 20 ms
TEXT_TOP = STAMP_HEIGHT + 16  # the name, below the stamp and a guard band
_VIDEO_CLOCK = 90000


def pin_vp8_bitrate(bps: int) -> None:
    """Pin aiortc's VP8 bitrate for this process.

    aiortc's encoder silently recreates itself (a keyframe) whenever the bandwidth
    estimate moves by more than 10 %, which hides keyframe-request bugs
    (docs/media.md, "Bots"); clamping min = max = default keeps it on one bitrate.
    """
    vpx.DEFAULT_BITRATE = vpx.MIN_BITRATE = vpx.MAX_BITRATE = bps


def tune_opus(bitrate: int = 32000, fec_loss_pct: int = 10) -> None:
    """Make aiortc's Opus encoder, in this process, speak like a browser that expects loss.

    aiortc encodes 96 kbps stereo without in-band FEC. Browsers send ~32 kbps and
    add FEC (LBRR) only once the receiver reports loss: an SFU's publisher hears
    only from Janus, which sees its clean uplink, so a chair browser never does
    (docs/reliability.md). A bot tuned here sends what FEC would look like at
    ``fec_loss_pct`` expected loss (libopus ``fec`` and ``packet_loss``), so the
    faults bench can show what it buys; ``fec_loss_pct=0`` turns FEC off.
    """
    from aiortc.codecs import opus

    original = getattr(opus.OpusEncoder, "_diemcau_init", opus.OpusEncoder.__init__)

    def _init(self: opus.OpusEncoder) -> None:
        original(self)
        self.codec.bit_rate = bitrate
        options = {"application": "voip"}
        if fec_loss_pct > 0:
            options.update(fec="1", packet_loss=str(fec_loss_pct))
        self.codec.options = options

    opus.OpusEncoder._diemcau_init = original  # type: ignore[attr-defined]
    opus.OpusEncoder.__init__ = _init  # type: ignore[method-assign]


class StampedVideoTrack(MediaStreamTrack):
    """Synthetic video whose every frame carries its send time and the sender's code."""

    kind = "video"

    def __init__(self, label: str) -> None:
        super().__init__()
        self._code = label_code(label)
        self._start: float | None = None
        self._count = 0
        self._background = np.full((HEIGHT, WIDTH), 90, dtype=np.uint8)
        draw_text(self._background, label, TEXT_TOP)

    def frame_at(self, index: int, sent_ms: int) -> av.VideoFrame:
        """Frame number ``index`` of this track, stamped with ``sent_ms`` (no pacing)."""
        bg = self._background.copy()
        x = (index * 4) % WIDTH
        bg[HEIGHT - 40 :, x : x + 16] = 200
        img = make_frame_luma(sent_ms, self._code, 0, bg)
        frame = av.VideoFrame.from_ndarray(img, format="yuv420p")
        frame.pts = index * (_VIDEO_CLOCK // FPS)
        frame.time_base = fractions.Fraction(1, _VIDEO_CLOCK)
        return frame

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
        return self.frame_at(self._count, now_ms32())


class ToneAudioTrack(MediaStreamTrack):
    """A continuous sine tone (s16 mono 48 kHz, 20 ms frames).

    ``speech_like`` swells and fades it three times a second, as syllables do:
    Opus's voice detector then treats it as speech, which is what its in-band
    FEC protects (a steady tone gets almost none).
    """

    kind = "audio"

    def __init__(self, freq: float = 440.0, *, speech_like: bool = False) -> None:
        super().__init__()
        self._freq = freq
        self._speech = speech_like
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
        level = 8000 * (0.6 + 0.4 * np.sin(2 * math.pi * 3 * t)) if self._speech else 8000
        pcm = (np.sin(2 * math.pi * self._freq * t) * level).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = self._samples
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        self._samples += AUDIO_SAMPLES
        return frame
