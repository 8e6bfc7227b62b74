"""A subscriber that listens for gaps: the program's audio packets kept, never decoded.

`AudioProbe` subscribes to one feed like a site's browser (ICE, DTLS, SRTP), asks
Janus to stop sending it the video (``configure`` with ``send: false``, so it
costs a weak link only the audio), and hands every clear audio RTP packet with
its arrival time to `AudioGaps`. The faults bench and tests put it behind the
same shaped link as a commune PC; run as a module it does that inside a lab
namespace: it prints ``{"ready": true}`` once audio flows, a report (one JSON
line) of the audio since the previous one for every ``report`` line read on
stdin, and a last report when stdin ends or ``--seconds`` pass::

    python -m diemcau.sim.audio_probe --ws WSS_URL --room R --feed F \\
        --token T --room-token RT --pin P --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import asdict

from aiortc import MediaStreamTrack

from diemcau.media.janus import JanusError
from diemcau.records import JsonObject
from diemcau.sim.audio_gaps import GAP_MS, AudioGaps
from diemcau.sim.janus_bots import JanusTarget, ViewerBot

__all__ = ["AudioProbe", "probe_report"]


class AudioProbe(ViewerBot):
    """Subscribes to ``feed_id``; keeps its audio packets for `AudioGaps`, counts video.

    Args:
        audio_only: ask Janus not to send the video (default).
        playout_ms: the jitter buffer modelled by `AudioGaps`.
    """

    def __init__(
        self,
        target: JanusTarget,
        feed_id: int,
        *,
        audio_only: bool = True,
        playout_ms: float = 150.0,
    ) -> None:
        super().__init__(target, feed_id)
        self.audio = AudioGaps(playout_ms=playout_ms)
        self.audio_only = audio_only
        self.video_packets = 0
        self.first_audio_at = 0.0
        self.pc.remove_all_listeners("track")

        @self.pc.on("track")
        def _on_track(track: MediaStreamTrack) -> None:
            self._tap()

    def _audio_payload_types(self) -> set[int]:
        sdp = self.pc.remoteDescription.sdp if self.pc.remoteDescription else ""
        out: set[int] = set()
        for line in sdp.splitlines():
            if line.startswith("m=audio "):
                out.update(int(pt) for pt in line.split()[3:] if pt.isdigit())
        return out

    def _tap(self) -> None:
        # Read at the first packet: "track" fires before the remote description is set.
        audio_pts: set[int] = set()
        gaps = self.audio

        async def _rtp(data: bytes, arrival_time_ms: int) -> None:
            if len(data) < 12:
                return
            if not audio_pts:
                audio_pts.update(self._audio_payload_types())
            if (data[1] & 0x7F) in audio_pts:
                if not self.first_audio_at:
                    self.first_audio_at = time.monotonic()
                gaps.add_rtp(data, time.monotonic())
            else:
                self.video_packets += 1

        for transceiver in self.pc.getTransceivers():
            transceiver.receiver.transport._handle_rtp_data = _rtp  # type: ignore[method-assign]

    async def start(self, timeout: float = 10.0) -> None:
        """Subscribe; then, with `audio_only`, stop the video at Janus."""
        await super().start(timeout)
        videos = [s for s in self.streams if s.get("type") == "video"]
        if self.audio_only and videos and self.handle is not None:
            await self.handle.send(
                {
                    "request": "configure",
                    "streams": [{"mid": str(v["mid"]), "send": False} for v in videos],
                },
                timeout=timeout,
            )

    async def wait_audio_packets(self, count: int, timeout: float = 10.0) -> None:
        target = self.audio.packets + count
        failed = f"audio probe of feed {self.feed_id}: no audio"
        await self._wait_until(lambda: self.audio.packets >= target, timeout, failed, 0.05)


def probe_report(probe: AudioProbe, *, cut: bool = False) -> JsonObject:
    """The probe's findings as plain data (the module's JSON line).

    With ``cut`` the report covers the audio since the previous cut only.
    """
    rep = probe.audio.cut() if cut else probe.audio.report()
    out: JsonObject = asdict(rep)
    out.update(
        gaps_over_100ms=rep.gaps_over(GAP_MS),
        gaps_per_minute=round(rep.per_minute(GAP_MS), 2),
        longest_ms=rep.longest_ms,
        unheard_pct=round(rep.unheard_pct, 3),
        packets=probe.audio.packets,
        video_packets=probe.video_packets,
    )
    out["gaps_ms"] = [round(g) for g in rep.gaps_ms]
    return out


async def _run(args: argparse.Namespace) -> JsonObject:
    target = JanusTarget(args.ws, args.room, args.token, args.room_token, args.pin)
    probe = AudioProbe(target, args.feed, audio_only=not args.video)
    try:
        await probe.start(timeout=20.0)
        await probe.wait_audio_packets(1, timeout=20.0)
        print(json.dumps({"ready": True}), flush=True)
        deadline = time.monotonic() + args.seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = await asyncio.wait_for(asyncio.to_thread(sys.stdin.readline), left)
            except TimeoutError:
                break
            if line.strip() != "report":
                break  # end of input, or "stop"
            print(json.dumps(probe_report(probe, cut=True)), flush=True)
        return probe_report(probe, cut=True)
    finally:
        await probe.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--ws", required=True, help="the node's Janus WebSocket URL")
    p.add_argument("--room", type=int, required=True)
    p.add_argument("--feed", type=int, required=True)
    p.add_argument("--token", default=None)
    p.add_argument("--room-token", default=None)
    p.add_argument("--pin", default=None, help="the program room's pin (from the grant)")
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--video", action="store_true", help="take the video too (counted)")
    args = p.parse_args(argv)
    if not 0 < args.seconds <= 3600:
        p.error("--seconds must be in (0, 3600]")
    try:
        report = asyncio.run(_run(args))
    except (OSError, TimeoutError, RuntimeError, JanusError) as exc:
        print(json.dumps({"error": str(exc) or type(exc).__name__}), flush=True)
        return 1
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
