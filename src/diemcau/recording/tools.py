"""Running the external tools of post-processing: janus-pp-rec (Debian janus-tools) and ffmpeg.

Every call is a child process with an argument list (no shell), a time limit and
its error output kept for the message when it fails. The child is killed (by its
own PID) if the limit passes or the caller is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MjrFile", "ToolError", "Tools", "mjr_files"]

# Janus VideoRoom's own names: videoroom-<room>-user-<feed>-<µs>-<audio|video|data>-<mindex>.mjr
_MJR = re.compile(r"-user-(\d+)-(\d+)-(audio|video|data)-(\d+)\.mjr$")


class ToolError(RuntimeError):
    """An external tool failed or is missing; the message says which and why."""


@dataclass(frozen=True)
class MjrFile:
    """One Janus recording file: whose feed, which medium, when it was opened."""

    path: Path
    feed_id: int
    kind: str  # audio | video | data
    opened_us: int


def mjr_files(folder: Path) -> list[MjrFile]:
    """The recording files Janus wrote in ``folder``, oldest first; other files are ignored."""
    out: list[MjrFile] = []
    if not folder.is_dir():
        return out
    for path in folder.glob("*.mjr"):
        m = _MJR.search(path.name)
        if m is not None:
            out.append(MjrFile(path, int(m.group(1)), m.group(3), int(m.group(2))))
    return sorted(out, key=lambda f: (f.opened_us, f.path.name))


@dataclass(eq=False, kw_only=True)
class Tools:
    """The post-processing tools, by command name or path."""

    pp_rec: str = "janus-pp-rec"
    ffmpeg: str = "ffmpeg"
    ffprobe: str = "ffprobe"
    timeout: float = 3600.0

    async def run(self, program: str, args: Sequence[str], *, timeout: float | None = None) -> str:
        """Run ``program args...``; returns its standard output, raises `ToolError`."""
        try:
            proc = await asyncio.create_subprocess_exec(
                program,
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except FileNotFoundError:
            raise ToolError(f"{program} is not installed (see scripts/setup.sh)") from None
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout or self.timeout)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(Exception):
                await proc.wait()
            raise
        if proc.returncode != 0:
            tail = err.decode(errors="replace").strip().splitlines()[-3:]
            raise ToolError(f"{Path(program).name} failed ({proc.returncode}): {' | '.join(tail)}")
        return out.decode(errors="replace")

    async def header(self, mjr: Path) -> dict[str, object]:
        """The JSON header of a Janus recording (``t`` type, ``c`` codec, ``u`` first frame µs)."""
        text = await self.run(self.pp_rec, ["-j", "-d", "0", str(mjr)], timeout=30)
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("{"):
                value = json.loads(line)
                if isinstance(value, dict):
                    return value
        raise ToolError(f"janus-pp-rec printed no header for {mjr.name}")

    async def convert(self, mjr: Path, out: Path) -> None:
        """A Janus recording to a media file (``.webm`` for VP8, ``.opus`` for Opus)."""
        await self.run(self.pp_rec, ["-d", "0", str(mjr), str(out)])
        if not out.exists() or out.stat().st_size == 0:
            raise ToolError(f"janus-pp-rec wrote nothing for {mjr.name}")

    async def ffmpeg_run(self, args: Sequence[str]) -> None:
        await self.run(self.ffmpeg, args)

    async def duration(self, path: Path) -> float:
        """The container's duration in seconds (ffprobe)."""
        text = await self.run(
            self.ffprobe,
            ["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
            timeout=60,
        )
        try:
            return float(text.strip())
        except ValueError:
            raise ToolError(f"ffprobe gave no duration for {path.name}") from None
