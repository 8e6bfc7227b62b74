"""The ffmpeg command lines that turn one segment's feeds into program video, and feeds into clips.

Pure functions (paths and times in, argument lists out), so the layout and the
alignment are tested without running ffmpeg. Decisions (docs/recording.md):

- Program: WebM (VP8 + Opus), the format Janus already records, so browsers play
  it and clips need no re-encoding. Each segment is composed on a fixed canvas
  (one feed: full frame; chair and one speaker: side by side; chair and two
  speakers: chair on the left, speakers stacked on the right), audio mixed,
  padded or cut to the segment's exact wall-clock length, so that a moment of
  the meeting is a fixed offset in the program. VP8 is encoded with
  ``-deadline realtime -cpu-used 8``: a composed hour must cost far less than an
  hour of a core (bench/recording.py measures it).
- Clip: the speaker's own feed, remuxed (``-c copy``), so it shows exactly what
  the site sent (the test reads the bot's frame stamps back from it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "FeedMedia",
    "Tile",
    "clip_part_args",
    "concat_args",
    "concat_list",
    "segment_args",
    "tiles",
]

ROLE_ORDER = {"chair": 0, "floor": 1, "inspection": 2, "other": 3}


@dataclass(frozen=True)
class FeedMedia:
    """One feed's media in one segment, ready for ffmpeg.

    ``video_start``/``audio_start`` are the wall-clock times (epoch seconds) of each
    file's first frame, read from the Janus recording's header.
    """

    feed_id: int
    role: str
    site_code: str | None
    video: Path | None = None
    video_start: float = 0.0
    audio: Path | None = None
    audio_start: float = 0.0

    @property
    def sort_key(self) -> tuple[int, str, int]:
        return (ROLE_ORDER.get(self.role, 9), self.site_code or "", self.feed_id)

    @property
    def start(self) -> float:
        """When the first of its files starts."""
        starts = [
            t for t, p in ((self.video_start, self.video), (self.audio_start, self.audio)) if p
        ]
        return min(starts) if starts else 0.0


@dataclass(frozen=True)
class Tile:
    x: int
    y: int
    w: int
    h: int


def _even(value: float) -> int:
    return max(2, int(value) // 2 * 2)


def tiles(n: int, width: int, height: int) -> list[Tile]:
    """Where each of ``n`` feeds goes on the canvas (the first is the chair's)."""
    if n <= 1:
        return [Tile(0, 0, width, height)]
    half = _even(width / 2)
    if n == 2:
        return [Tile(0, 0, half, height), Tile(half, 0, width - half, height)]
    if n == 3:
        top = _even(height / 2)
        return [
            Tile(0, 0, half, height),
            Tile(half, 0, width - half, top),
            Tile(half, top, width - half, height - top),
        ]
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    w, h = _even(width / cols), _even(height / rows)
    return [Tile((i % cols) * w, (i // cols) * h, w, h) for i in range(n)]


def _secs(value: float) -> str:
    return f"{max(0.0, value):.3f}"


_QUIET = ["-hide_banner", "-nostdin", "-y", "-loglevel", "error"]


def _video_graph(
    feeds: Sequence[FeedMedia], start: float, duration: float, canvas: tuple[int, int], fps: int
) -> list[str]:
    """Filters placing each feed's video (inputs 0..n-1) on a black canvas → ``[vout]``."""
    width, height = canvas
    graph = [f"color=c=black:s={width}x{height}:r={fps}:d={_secs(duration)}[base0]"]
    for i, (feed, tile) in enumerate(zip(feeds, tiles(len(feeds), width, height), strict=True)):
        graph.append(
            f"[{i}:v]setpts=PTS-STARTPTS+{_secs(feed.video_start - start)}/TB,"
            f"scale={tile.w}:{tile.h}:force_original_aspect_ratio=decrease,"
            f"pad={tile.w}:{tile.h}:(ow-iw)/2:(oh-ih)/2,setsar=1[v{i}]"
        )
        graph.append(
            f"[base{i}][v{i}]overlay={tile.x}:{tile.y}:eof_action=pass:repeatlast=0[base{i + 1}]"
        )
    graph.append(f"[base{len(feeds)}]format=yuv420p[vout]")
    return graph


def _audio_graph(
    feeds: Sequence[FeedMedia], first_input: int, start: float, duration: float
) -> list[str]:
    """Filters mixing each feed's audio, delayed to its start, cut to length → ``[aout]``."""
    graph: list[str] = []
    for i, feed in enumerate(feeds):
        delay = int(round(max(0.0, feed.audio_start - start) * 1000))
        graph.append(f"[{first_input + i}:a]aresample=48000,adelay={delay}:all=1[a{i}]")
    length = _secs(duration)
    if not feeds:
        return [f"anullsrc=r=48000:cl=stereo,atrim=0:{length}[aout]"]
    mixed = "".join(f"[a{i}]" for i in range(len(feeds)))
    graph.append(
        f"{mixed}amix=inputs={len(feeds)}:duration=longest:normalize=0,apad,atrim=0:{length}[aout]"
    )
    return graph


def segment_args(
    feeds: Sequence[FeedMedia],
    start: float,
    duration: float,
    out: Path,
    *,
    canvas: tuple[int, int] = (854, 480),
    fps: int = 25,
) -> list[str]:
    """ffmpeg arguments composing one segment ``[start, start + duration)`` into ``out``."""
    ordered = sorted(feeds, key=lambda f: f.sort_key)
    with_video = [f for f in ordered if f.video is not None]
    with_audio = [f for f in ordered if f.audio is not None]
    inputs = [*(str(f.video) for f in with_video), *(str(f.audio) for f in with_audio)]
    graph = [
        *_video_graph(with_video, start, duration, canvas, fps),
        *_audio_graph(with_audio, len(with_video), start, duration),
    ]
    encode = ["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "900k"]
    encode += ["-g", str(fps * 2), "-c:a", "libopus", "-b:a", "64k", "-f", "webm"]
    return [
        *_QUIET,
        *(arg for path in inputs for arg in ("-i", path)),
        "-filter_complex",
        ";".join(graph),
        *("-map", "[vout]", "-map", "[aout]", "-t", _secs(duration)),
        *encode,
        str(out),
    ]


def clip_part_args(feed: FeedMedia, out: Path) -> list[str]:
    """ffmpeg arguments remuxing one feed's video and audio of one segment (no re-encoding)."""
    if feed.video is None and feed.audio is None:
        raise ValueError(f"feed {feed.feed_id} has no media")
    args: list[str] = list(_QUIET)
    origin = feed.start
    maps: list[str] = []
    index = 0
    for path, begin, kind in (
        (feed.video, feed.video_start, "v"),
        (feed.audio, feed.audio_start, "a"),
    ):
        if path is None:
            continue
        args += ["-itsoffset", _secs(begin - origin), "-i", str(path)]
        maps += ["-map", f"{index}:{kind}"]
        index += 1
    return [*args, *maps, "-c", "copy", "-f", "webm", str(out)]


def concat_list(parts: Sequence[Path]) -> str:
    """The concat demuxer's list file for ``parts`` (absolute paths, quoted)."""
    lines = []
    for p in parts:
        quoted = str(p.resolve()).replace("'", "'\\''")
        lines.append(f"file '{quoted}'")
    return "\n".join(lines) + "\n"


def concat_args(list_file: Path, out: Path) -> list[str]:
    """ffmpeg arguments joining same-format WebM parts into ``out`` without re-encoding."""
    return [
        *_QUIET,
        "-f",
        "concat",
        "-safe",
        "0",
        "-i",
        str(list_file),
        "-c",
        "copy",
        "-f",
        "webm",
        str(out),
    ]
