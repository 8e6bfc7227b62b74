"""Listening for audio gaps on a commune PC of the lab.

`AudioProbeRun` starts `diemcau.sim.audio_probe` inside a lab host's namespace
(so its media crosses that office's link, shaped or not), subscribed to one
feed with a site's grant, and collects a report per stretch of time
(`segment`, one per phase of a fault run) and at the end. The faults bench and
tests put one beside a Chromium site on a weak link (a second listener in the
office: its ~45 kbps of audio share the link).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import TypedDict

from diemcau.lab.netns import Host
from diemcau.media.grants import SiteGrant
from diemcau.records import JsonObject

__all__ = ["AudioProbeRun", "ProbeReport"]


class ProbeReport(TypedDict):
    """What the faults bench and tests read of a report line of the probe
    (`diemcau.sim.audio_probe.probe_report`, which says more)."""

    gaps_over_100ms: int
    gaps_per_minute: float
    longest_ms: float
    unheard_pct: float
    frames: int
    lost: int
    recovered: int


class AudioProbeRun:
    """An audio probe process on ``host`` listening to ``feed`` for ``seconds``.

    Args:
        host: the lab host to run on (a commune PC).
        grant: a site's media grant (``ws_url``, ``token``, ``room_token``, ``program``
            with its room and pin).
        feed: the publisher id to listen to (the chair's feed).
        seconds: how long to listen once audio flows.
    """

    def __init__(self, host: Host, grant: SiteGrant, feed: int, seconds: float) -> None:
        program = grant["program"]
        if program is None:
            raise ValueError("the grant watches no program (none runs)")
        options: dict[str, object] = {
            "--ws": grant["ws_url"],
            "--room": program["room"],
            "--feed": feed,
            "--token": grant["token"],
            "--room-token": grant["room_token"],
            "--seconds": seconds,
        }
        if program["pin"]:
            options["--pin"] = program["pin"]
        args = [part for name, value in options.items() for part in (name, str(value))]
        self.argv = host.command(sys.executable, "-m", "diemcau.sim.audio_probe", *args)
        self.seconds = seconds
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self, timeout: float = 30.0) -> None:
        """Start the probe; returns once it hears the first audio packet."""
        self._proc = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=dict(os.environ),
        )
        line = await self._line(timeout)
        if line.get("ready") is not True:
            await self.stop()
            raise RuntimeError(f"the audio probe did not start: {line}")

    async def _raw(self, timeout: float) -> bytes:
        assert self._proc is not None and self._proc.stdout is not None
        return await asyncio.wait_for(self._proc.stdout.readline(), timeout)

    async def _line(self, timeout: float) -> JsonObject:
        raw = await self._raw(timeout)
        if not raw:
            return {"error": "the probe exited"}
        out: JsonObject = json.loads(raw)
        return out

    async def segment(self) -> ProbeReport:
        """The report of the audio heard since the previous segment (or the start)."""
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write(b"report\n")
        await self._proc.stdin.drain()
        return self._checked(await self._raw(30))

    async def report(self) -> ProbeReport:
        """End the listening; the report of the audio since the last segment."""
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write(b"stop\n")
            await self._proc.stdin.drain()
            raw = await self._raw(30)
        finally:
            await self.stop()
        return self._checked(raw)

    @staticmethod
    def _checked(raw: bytes) -> ProbeReport:
        """The probe's report line (`diemcau.sim.audio_probe.probe_report`), or its error."""
        if not raw:
            raise RuntimeError("audio probe: the probe exited")
        out = json.loads(raw)
        if "error" in out:
            raise RuntimeError(f"audio probe: {out['error']}")
        report: ProbeReport = out
        return report

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()
