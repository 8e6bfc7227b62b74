"""Many light two-way sites in one worker process, for capacity runs.

A site's browser publishes its camera and microphone into its uplink room and
plays the program. `run_site_worker` does the same for a list of sites with
light bots: a `LightPublisher` (pre-encoded VP8/Opus, nothing encoded) and a
`LightReceiver` (RTP counted, nothing decoded) per site, so that a relay can be
loaded with hundreds of sites from a few processes on the same machine
(bench/media.py spreads them over worker processes). Everything it starts, it
stops: the worker holds the load for a bounded time, reports, and exits.

The worker talks to its parent through a queue: ``("ready", started)`` once the
bots are up and settled; it then waits for the parent's ``go`` event (every
worker ready: one window for all), and puts ``("done", WorkerResult)`` after
``hold_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import astuple, dataclass
from typing import Protocol, TypeVar

from diemcau.media.grants import SiteGrant
from diemcau.sim.janus_bots import JanusTarget
from diemcau.sim.light_publisher import LightPublisher, PreEncodedClip, process_pacer
from diemcau.sim.rtp_counter import LightReceiver

__all__ = ["Flag", "Outbox", "SiteSpec", "WorkerResult", "run_site_worker", "site_spec"]


class Outbox(Protocol):
    """Where a worker process reports (a multiprocessing queue)."""

    def put(self, item: tuple[str, object], /) -> None: ...


class Flag(Protocol):
    """What a worker waits for before it measures (a multiprocessing event)."""

    def is_set(self) -> bool: ...


class _Bot(Protocol):
    async def start(self, timeout: float = ...) -> None: ...


B = TypeVar("B", bound=_Bot)


@dataclass(frozen=True)
class SiteSpec:
    """One site's media, as its grant says (plain tuples: it crosses processes).

    Attributes:
        code: the site code (the publisher's label).
        publish: (ws_url, room, token, publish token, None) of the uplink room, or
            None for a receive-only site.
        feed_id: the site's own feed id.
        program: (ws_url, room, token, room_token, pin) of the program room, or
            None for a publish-only site.
        program_feed: the program feed to receive.
    """

    code: str
    publish: tuple[str, int, str, str, str | None] | None
    feed_id: int
    program: tuple[str, int, str, str, str | None] | None
    program_feed: int


def site_spec(
    code: str, grant: SiteGrant, program_feed: int, *, publish: bool, receive: bool
) -> SiteSpec:
    """A `SiteSpec` from a site media grant (`MediaOrchestrator.site_media_grant`)."""
    pub, prog = JanusTarget.publish_of(grant), JanusTarget.program_of(grant)
    return SiteSpec(
        code,
        astuple(pub) if publish else None,
        grant["publish"]["feed_id"],
        astuple(prog) if receive else None,
        program_feed,
    )


@dataclass(frozen=True)
class WorkerResult:
    """What one worker measured over its window.

    Attributes:
        received, expected: program RTP packets received / expected from
            sequence numbers, over the window, summed over its receivers.
        publishers_up, receivers_up: bots that connected.
        silent_receivers: receivers that got no packet in the window.
        sent_packets: RTP packets its publishers sent in the window.
        clip_rate: RTP packets per second one of its publishers sends, nominally.
    """

    received: int
    expected: int
    publishers_up: int
    receivers_up: int
    silent_receivers: int
    sent_packets: int
    clip_rate: float


async def _start_all(bots: list[B], batch: int, timeout: float) -> list[B]:
    up: list[B] = []
    for i in range(0, len(bots), batch):
        chunk = bots[i : i + batch]
        res = await asyncio.gather(*(b.start(timeout) for b in chunk), return_exceptions=True)
        up += [b for b, r in zip(chunk, res, strict=True) if not isinstance(r, BaseException)]
    return up


async def run_sites(
    specs: list[SiteSpec],
    hold_s: float,
    out: Outbox,
    go: Flag | None = None,
    *,
    settle_s: float = 2.0,
    batch: int = 10,
) -> WorkerResult:
    """Start every site's bots, report ready, wait for ``go``, measure ``hold_s``, stop."""
    clip = PreEncodedClip.make()
    pacer = process_pacer()
    pubs = [
        LightPublisher(JanusTarget(*s.publish), s.feed_id, s.code, clip)
        for s in specs
        if s.publish is not None
    ]
    recvs = [
        LightReceiver(JanusTarget(*s.program), s.program_feed)
        for s in specs
        if s.program is not None
    ]
    try:
        pubs_up = await _start_all(list(pubs), batch, 20.0)
        recvs_up = await _start_all(list(recvs), batch, 20.0)
        await asyncio.sleep(settle_s)  # first keyframes, jitter
        out.put(("ready", len(pubs_up) + len(recvs_up)))
        if go is not None:
            deadline = time.monotonic() + 600
            while not go.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        base = [(r.counter.packets, r.counter.expected()) for r in recvs_up]
        sent0 = pacer.sent_packets
        await asyncio.sleep(hold_s)
        got = sum(r.counter.packets - p for r, (p, _) in zip(recvs_up, base, strict=True))
        exp = sum(r.counter.expected() - e for r, (_, e) in zip(recvs_up, base, strict=True))
        silent = sum(1 for r, (p, _) in zip(recvs_up, base, strict=True) if r.counter.packets == p)
        return WorkerResult(
            got,
            exp,
            len(pubs_up),
            len(recvs_up),
            silent,
            pacer.sent_packets - sent0,
            clip.packet_rate,
        )
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                asyncio.gather(*(b.stop() for b in [*recvs, *pubs]), return_exceptions=True),
                30.0,
            )


def run_site_worker(
    specs: list[SiteSpec], hold_s: float, out: Outbox, go: Flag | None = None
) -> None:
    """Process entry point: run `run_sites` and put ``("done", WorkerResult)`` on ``out``."""
    result = asyncio.run(run_sites(specs, hold_s, out, go))
    out.put(("done", result))
