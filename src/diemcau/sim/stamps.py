"""Frame stamps: the send time and the sender drawn into a video frame as pixel blocks.

A bot's 320×240 frame carries, in its top 80 rows, 100 black or white blocks: the
sender's wall-clock time in ms (32 bits), a 32-bit code of its label (`label_code`) and a
CRC-32 of those 64 bits. A viewer reads them back after Janus and the VP8 decoder, which
gives glass-to-glass latency and whose picture arrived (docs/media.md, "Bots").

The geometry is chosen so that the encoder's own noise never alters a stamp: each block is
one whole 16×16 VP8 macroblock, aligned on the macroblock grid, and only its centre 8×8 is
read. A flat macroblock is coded by its DC terms alone, so a change from black to white is
carried exactly even at 50 kbps, and the loop filter (which touches at most 3 pixels on each
side of a macroblock edge) never reaches the centre. Blocks of 10 px, as drawn before,
straddled macroblocks and 4×4 transform blocks: at 400 kbps about one frame in 150 came out
with a block half old and half new, misread now and then in both copies of a bit so that
the old complement check passed on a wrong time.

Reading a stamp gives one of three verdicts (`StampReading`):

- ``ok``: every block is clearly dark or light and the checksum matches;
- ``unreadable``: the frame is smaller than the stamp, or a block is neither dark nor
  light (blurred or half-updated): noise, not evidence that the content is wrong;
- ``corrupt``: every block is clear but the checksum fails: the frame shows content
  that was never sent together (blocks left over from an earlier frame after a lost
  packet, decoding against a wrong reference, flipped bits). This is a real error.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
from enum import Enum

import numpy as np
import numpy.typing as npt

__all__ = [
    "BLOCK",
    "HEIGHT",
    "STAMP_ROWS",
    "STAMP_HEIGHT",
    "WIDTH",
    "FrameStamp",
    "StampReading",
    "StampVerdict",
    "inspect_stamp",
    "label_code",
    "make_frame_luma",
    "now_ms32",
    "read_stamp",
]

# A plane of 8-bit luma (or a yuv420p plane stack), rows by columns.
Luma = npt.NDArray[np.uint8]
# A decoded plane as a decoder hands it over (8 bits or more a sample).
Decoded = npt.NDArray[np.number]

WIDTH, HEIGHT = 320, 240
BLOCK = 16  # one VP8 macroblock
COLUMNS = WIDTH // BLOCK  # 20 blocks per row
STAMP_ROWS = 5  # 100 blocks: 32 bits time, 32 bits label, 32 bits CRC, 4 spare (dark)
STAMP_HEIGHT = STAMP_ROWS * BLOCK
_BITS = 96
DARK, LIGHT = 16, 235  # video-range luma
# Block means read back (video range 16..235, or full range 0..255 after a gray
# conversion): below _LOW is dark, above _HIGH is light, in between is neither.
_LOW, _HIGH = 96, 160
_CENTRE = slice(BLOCK // 4, BLOCK - BLOCK // 4)  # the 8×8 centre the loop filter leaves alone


def label_code(label: str) -> int:
    """The 32-bit code drawn into every frame of the bot labelled ``label``."""
    return zlib.crc32(label.encode()) & 0xFFFFFFFF


def now_ms32() -> int:
    """The wall clock in ms, cut to 32 bits (wraps every 49.7 days; differences still work)."""
    return int(time.time() * 1000) & 0xFFFFFFFF


@dataclass(frozen=True)
class FrameStamp:
    """What a frame says about itself: send time (ms, 32-bit wall clock) and sender."""

    sent_ms: int
    label: int


class StampVerdict(Enum):
    """How a stamp read back (see the module docstring)."""

    OK = "ok"
    UNREADABLE = "unreadable"
    CORRUPT = "corrupt"


@dataclass(frozen=True)
class StampReading:
    """A verdict, and the stamp when the verdict is ``OK``."""

    verdict: StampVerdict
    stamp: FrameStamp | None = None


def _word(stamp: FrameStamp) -> int:
    payload = stamp.sent_ms.to_bytes(4, "big") + stamp.label.to_bytes(4, "big")
    return (int.from_bytes(payload, "big") << 32) | zlib.crc32(payload)


def make_frame_luma(sent_ms: int, label: int, shade: int, background: Luma | None = None) -> Luma:
    """A yuv420p plane stack (luma, then neutral chroma) with the stamp in the top rows.

    ``background`` (a prepared luma plane, e.g. with the site's name drawn below the
    stamp) fills the rest; otherwise a flat ``shade``.
    """
    img = np.full((HEIGHT * 3 // 2, WIDTH), 128, dtype=np.uint8)
    luma = img[:HEIGHT]
    if background is not None:
        luma[:] = background
    else:
        luma[STAMP_HEIGHT:, :] = shade
    word = _word(FrameStamp(sent_ms & 0xFFFFFFFF, label & 0xFFFFFFFF))
    bits = [(word >> (_BITS - 1 - i)) & 1 for i in range(_BITS)]
    bits += [0] * (STAMP_ROWS * COLUMNS - _BITS)
    levels = np.where(np.array(bits, dtype=bool), LIGHT, DARK).astype(np.uint8)
    blocks = levels.reshape(STAMP_ROWS, 1, COLUMNS, 1)
    luma[:STAMP_HEIGHT, :] = np.broadcast_to(blocks, (STAMP_ROWS, BLOCK, COLUMNS, BLOCK)).reshape(
        STAMP_HEIGHT, WIDTH
    )
    return img


def inspect_stamp(luma: Decoded) -> StampReading:
    """Read the blocks back from a luma (or gray) plane and say what they show."""
    if luma.ndim != 2 or luma.shape[0] < STAMP_HEIGHT or luma.shape[1] < WIDTH:
        return StampReading(StampVerdict.UNREADABLE)
    area = luma[:STAMP_HEIGHT, :WIDTH].reshape(STAMP_ROWS, BLOCK, COLUMNS, BLOCK)
    means = area[:, _CENTRE, :, _CENTRE].mean(axis=(1, 3)).reshape(-1)[:_BITS]
    if bool(((means >= _LOW) & (means <= _HIGH)).any()):
        return StampReading(StampVerdict.UNREADABLE)
    word = 0
    for light in means > _HIGH:
        word = (word << 1) | int(light)
    payload = (word >> 32).to_bytes(8, "big")
    if zlib.crc32(payload) != word & 0xFFFFFFFF:
        return StampReading(StampVerdict.CORRUPT)
    stamp = FrameStamp(int.from_bytes(payload[:4], "big"), int.from_bytes(payload[4:], "big"))
    return StampReading(StampVerdict.OK, stamp)


def read_stamp(luma: Decoded) -> FrameStamp | None:
    """The stamp of a frame, or None when it is unreadable or corrupt (`inspect_stamp`)."""
    return inspect_stamp(luma).stamp
