"""Simulated sites for the control plane: thousands of site sessions in one process.

Each simulated site speaks the real protocol (docs/protocol.md) over the
`websockets` client: hello with its join code, heartbeats, synthetic link
health, and on reconnect a resume token plus the last sequence number of every
stream it follows, so the server's lossless delivery is exercised for real.
With ``flaky`` set, sites misbehave at random: drop the connection without a
close (then come back and resume), go silent while keeping the socket open
(the server must show them offline), or report a degraded link for a while.

Given the site-socket URLs of every control server of a standby pair (their
join configuration lists them, ``GET /api/presence/info`` ``urls``), a site
tries the one that served it last, then the others in order.

One scheduler task sends every heartbeat (in ten slices per interval) with a
synchronous write, so 10,799 sites cost 10,799 small reader tasks and no
per-site timer.
"""

from __future__ import annotations

import asyncio
import csv
import json
import logging
import random
import resource
import sys
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.connection import broadcast
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from diemcau.records import JsonObject

__all__ = [
    "SimOptions",
    "SimSite",
    "Swarm",
    "read_join_codes",
    "raise_fd_limit",
]

log = logging.getLogger(__name__)

FAULTS = ("drop", "silent", "degrade")
_HB = '{"type":"hb"}'


def raise_fd_limit() -> int:
    """Lift the soft open-files limit to the hard one (every site is a socket)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= hard:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        # The kernel caps the soft limit (fs.nr_open) below an unlimited hard one:
        # keep what we have rather than fail the whole swarm.
        return soft
    return hard


def read_join_codes(path: Path) -> list[str]:
    """Join codes from a provisioning CSV export, a folder of them, or a plain list.

    A CSV is recognised by a header column containing "join code" (the
    ``diemcau provision`` export); otherwise each non-empty line is one code.
    """
    files = sorted(path.glob("*.csv")) if path.is_dir() else [path]
    codes: list[str] = []
    for f in files:
        text = f.read_text(encoding="utf-8-sig")
        first = text.splitlines()[0] if text else ""
        if "join code" in first.lower():
            reader = csv.reader(text.splitlines())
            header = next(reader)
            col = next(i for i, h in enumerate(header) if "join code" in h.lower())
            codes += [row[col].lstrip("'").strip() for row in reader if len(row) > col]
        else:
            codes += [line.strip() for line in text.splitlines() if line.strip()]
    return [c for c in codes if c and ":" in c]


@dataclass
class SimOptions:
    """How the simulated sites behave.

    Attributes:
        flaky: faults per site per minute (0.05 = one site in twenty each minute).
        link_every: heartbeats between two link reports.
        connect_concurrency: handshakes in flight at once.
        join_rate: first connections started per second (0: all at once). A real
            national join is spread over seconds too, and the ramp keeps the
            simulator's own heartbeats on time while thousands of handshakes run.
        reconnect_s: (min, max) wait before reconnecting.
        summary_s: interval of the running summary line (0: none).
        seed: random seed (faults and link figures), for repeatable runs.
        protocol: the protocol version said in ``hello`` (docs/protocol.md). With 2
            the sites follow the welcome's sub-second heartbeats, as a browser
            terminal does; thousands of them in one process then fall behind on a
            busy machine and are shown offline, so crowds run on 1 (1 s / 2.5 s).
    """

    flaky: float = 0.0
    link_every: int = 5
    connect_concurrency: int = 128
    join_rate: float = 500.0
    reconnect_s: tuple[float, float] = (0.5, 2.0)
    summary_s: float = 2.0
    seed: int | None = None
    protocol: int = 2


@dataclass
class SimSite:
    """One simulated site and what it has seen."""

    index: int
    join_code: str
    site_id: int = 0
    target: int = 0  # index of the site-socket URL that served it last
    token: str = ""
    ws: ClientConnection | None = None
    state: str = "idle"  # idle | connecting | online | down
    seqs: dict[str, int] = field(default_factory=dict)
    received: int = 0
    silent_until: float = 0.0
    degraded_until: float = 0.0
    beats: int = 0
    last_close: str = ""


class Swarm:
    """Runs simulated sites against a site-session URL.

    Args:
        url: the ``ws://.../site`` URL (see GET /api/presence/info), or the URLs of
            every control server of a standby pair, in the order sites try them.
        join_codes: one per simulated site.
        options: behaviour, see `SimOptions`.
        out: where the running summary goes.
        on_message: called with (site, message) for every delivery (benchmarks).
        on_online: called with the site each time its session is welcomed (first
            connection and every reconnection), e.g. to join a live meeting.
        on_reply: called with (site, reply) for every ``reply`` to a site's request.
    """

    def __init__(
        self,
        url: str | Sequence[str],
        join_codes: Sequence[str],
        options: SimOptions | None = None,
        *,
        out: TextIO | None = sys.stderr,
        on_message: Callable[[SimSite, JsonObject], None] | None = None,
        on_online: Callable[[SimSite], None] | None = None,
        on_reply: Callable[[SimSite, JsonObject], None] | None = None,
    ) -> None:
        self.urls = [url] if isinstance(url, str) else list(url)
        if not self.urls:
            raise ValueError("no site-socket URL given")
        self.url = self.urls[0]
        self.options = options or SimOptions()
        self.sites = [SimSite(i, code) for i, code in enumerate(join_codes)]
        self.out = out
        self.on_message = on_message
        self.on_online = on_online
        self.on_reply = on_reply
        self.rng = random.Random(self.options.seed)  # noqa: S311 - simulation, not security
        self.heartbeat_s = 1.0
        self.counters: Counter[str] = Counter()
        self._stopping = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._gate = asyncio.Semaphore(self.options.connect_concurrency)
        # Cleared while the heartbeat loop runs late: new handshakes wait, so this
        # process never makes its own connected sites miss heartbeats.
        self._calm = asyncio.Event()
        self._calm.set()
        self._started = time.monotonic()

    # --- running -----------------------------------------------------------------------------

    async def run(self, duration: float | None = None, stop: asyncio.Event | None = None) -> None:
        """Connect every site and keep them alive until `duration` or `stop`."""
        raise_fd_limit()
        self._started = time.monotonic()
        loops = [asyncio.create_task(self._heartbeats()), asyncio.create_task(self._ramp())]
        if self.options.summary_s > 0:
            loops.append(asyncio.create_task(self._summaries()))
        if self.options.flaky > 0:
            loops.append(asyncio.create_task(self._faults()))
        waiters: list[asyncio.Task[object]] = []
        if duration:
            waiters.append(asyncio.create_task(asyncio.sleep(duration)))
        if stop is not None:
            waiters.append(asyncio.create_task(stop.wait()))
        try:
            if waiters:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            else:
                await asyncio.Event().wait()
        finally:
            for w in waiters:
                w.cancel()
            for loop in loops:
                loop.cancel()
            await self.close()
            self.summary()

    async def close(self) -> None:
        """Leave cleanly (``bye``) and stop every task."""
        self._stopping = True
        for site in self.sites:
            if site.ws is not None and site.state == "online":
                self.send(site, {"type": "bye"})
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for site in self.sites:
            if site.ws is not None:
                site.ws.transport.abort()

    async def _ramp(self) -> None:
        """Start every site's session, `join_rate` per second."""
        rate = self.options.join_rate
        step = max(1, int(rate / 20)) if rate > 0 else len(self.sites)
        for i in range(0, len(self.sites), step):
            for site in self.sites[i : i + step]:
                self._spawn(self._session(site))
            if rate > 0:
                await asyncio.sleep(step / rate)

    def _spawn(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- one site ----------------------------------------------------------------------------

    async def _session(self, site: SimSite) -> None:
        """Connect, read until the connection ends, reconnect (with resume) until stopped."""
        while not self._stopping:
            ok = await self._connect(site)
            if ok and site.ws is not None:
                await self._read(site, site.ws)
            site.state = "down"
            site.ws = None
            if self._stopping:
                return
            lo, hi = self.options.reconnect_s
            await asyncio.sleep(self.rng.uniform(lo, hi))
            self.counters["reconnects"] += 1

    async def _connect(self, site: SimSite) -> bool:
        """One session: the URL that served the site last first, then the others in order."""
        site.state = "connecting"
        await self._calm.wait()  # heartbeats of the sites already in come first
        count = len(self.urls)
        for step in range(count):
            index = (site.target + step) % count
            outcome = await self._connect_to(site, self.urls[index])
            if outcome is not None:
                if outcome:
                    site.target = index
                return outcome
            self.counters["failovers"] += 1 if count > 1 else 0
        return False

    async def _connect_to(self, site: SimSite, url: str) -> bool | None:
        """Connect and say hello at `url`: True welcomed, False refused, None unreachable
        there (no server, or one shutting down or standing by: try the next URL)."""
        # One server alone may take its time (a national join); a pair's next server
        # is worth trying sooner.
        timeout = 60 if len(self.urls) == 1 else 10
        async with self._gate:
            try:
                ws = await connect(
                    url,
                    compression=None,
                    ping_interval=None,
                    max_size=1 << 20,
                    open_timeout=timeout,
                    close_timeout=1,
                )
            except (OSError, InvalidHandshake, TimeoutError) as exc:
                self.counters["connect_errors"] += 1
                site.last_close = type(exc).__name__
                return None
            # Either version: this client follows the welcome's heartbeat interval.
            hello: JsonObject = {
                "type": "hello",
                "v": self.options.protocol,
                "client": "diemcau-sim",
            }
            if site.token:
                hello["token"] = site.token
                hello["resume"] = dict(site.seqs)
            else:
                hello["join_code"] = site.join_code
            try:
                await ws.send(json.dumps(hello))
                welcome = json.loads(await asyncio.wait_for(ws.recv(), timeout))
            except (ConnectionClosed, TimeoutError) as exc:
                code = getattr(getattr(exc, "rcvd", None), "code", None)
                if code == 4001 and site.token:
                    site.token = ""  # expired or rotated: next try uses the join code
                    self.counters["token_refused"] += 1
                else:
                    self.counters["refused" if code == 4001 else "hello_errors"] += 1
                site.last_close = str(code)
                ws.transport.abort()
                return False if code == 4001 else None
        if welcome.get("type") != "welcome":
            ws.transport.abort()
            return False
        site.ws = ws
        site.site_id = int(welcome["site_id"])
        site.token = str(welcome["session_token"])
        self.heartbeat_s = float(welcome.get("heartbeat_s", self.heartbeat_s))
        for stream, seq in welcome.get("streams", {}).items():
            site.seqs.setdefault(stream, int(seq))
        site.state = "online"
        self.counters["joins"] += 1
        if self.on_online is not None:
            self.on_online(site)
        return True

    async def _read(self, site: SimSite, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                msg = json.loads(raw)
                kind = msg.get("type")
                if kind == "msg":
                    site.received += 1
                    self.counters["messages"] += 1
                    if msg.get("seq") is not None:
                        site.seqs[msg["stream"]] = int(msg["seq"])
                    if self.on_message is not None:
                        self.on_message(site, msg)
                elif kind == "reply":
                    if self.on_reply is not None:
                        self.on_reply(site, msg)
                elif kind in ("follow", "reset"):
                    site.seqs[msg["stream"]] = int(msg["seq"])
                elif kind == "unfollow":
                    site.seqs.pop(msg["stream"], None)
        except ConnectionClosed as exc:
            rcvd = exc.rcvd
            site.last_close = f"{rcvd.code} {rcvd.reason}" if rcvd else "lost"
            self.counters[f"closed_{rcvd.code}" if rcvd else "closed_lost"] += 1

    def send(self, site: SimSite, message: Mapping[str, object]) -> None:
        """Send ``message`` on the site's session now, if it has one (no waiting)."""
        if site.ws is not None:
            broadcast([site.ws], json.dumps(message, separators=(",", ":")))

    # --- behaviour ---------------------------------------------------------------------------

    def _link(self, site: SimSite, now: float) -> dict[str, float]:
        r = self.rng
        if site.degraded_until > now:
            return {
                "rtt_ms": r.uniform(300, 900),
                "loss_pct": r.uniform(6, 20),
                "jitter_ms": r.uniform(40, 120),
                "send_kbps": r.uniform(50, 300),
                "recv_kbps": r.uniform(100, 400),
            }
        return {
            "rtt_ms": round(r.uniform(15, 120), 1),
            "loss_pct": round(r.uniform(0, 1.5), 2),
            "jitter_ms": round(r.uniform(1, 15), 1),
            "send_kbps": round(r.uniform(400, 1200)),
            "recv_kbps": round(r.uniform(600, 1500)),
        }

    async def _heartbeats(self) -> None:
        """Every heartbeat interval, in ten slices, one ``hb`` per online, non-silent site."""
        slices = 10
        tick = 0
        while True:
            period = self.heartbeat_s / slices
            before = time.monotonic()
            await asyncio.sleep(period)
            now = time.monotonic()
            if now - before > period + self.heartbeat_s * 0.2:
                self._calm.clear()
            else:
                self._calm.set()
            part = tick % slices
            tick += 1
            for site in self.sites[part::slices]:
                if site.state != "online" or site.silent_until > now:
                    continue
                site.beats += 1
                try:
                    if site.beats % self.options.link_every == 1:
                        self.send(site, {"type": "hb", "link": self._link(site, now)})
                    elif site.ws is not None:
                        broadcast([site.ws], _HB)  # the plain heartbeat, encoded once
                except Exception:  # the connection died under us; its reader notices
                    self.counters["write_errors"] += 1

    async def _faults(self) -> None:
        """Once a second, inject faults at `flaky` per site per minute."""
        p = self.options.flaky / 60.0
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            for site in self.sites:
                if site.state != "online" or self.rng.random() >= p:
                    continue
                fault = self.rng.choice(FAULTS)
                self.counters[f"fault_{fault}"] += 1
                if fault == "drop" and site.ws is not None:
                    site.ws.transport.abort()  # no close frame, like a cut cable
                elif fault == "silent":
                    site.silent_until = now + self.rng.uniform(4, 8)
                else:
                    site.degraded_until = now + self.rng.uniform(10, 30)
                    self.send(site, {"type": "link", "link": self._link(site, now)})

    # --- reporting ---------------------------------------------------------------------------

    def states(self) -> Counter[str]:
        return Counter(site.state for site in self.sites)

    def summary(self) -> str:
        st = self.states()
        c = self.counters
        line = (
            f"[sim] {time.monotonic() - self._started:6.1f}s online {st['online']}/"
            f"{len(self.sites)} connecting {st['connecting']} down {st['down']} "
            f"joins {c['joins']} reconnects {c['reconnects']} refused {c['refused']} "
            f"msgs {c['messages']} faults drop={c['fault_drop']} silent={c['fault_silent']} "
            f"degrade={c['fault_degrade']} errors {c['connect_errors'] + c['hello_errors']}"
        )
        if self.out is not None:
            print(line, file=self.out, flush=True)
        return line

    async def _summaries(self) -> None:
        while True:
            await asyncio.sleep(self.options.summary_s)
            self.summary()

    def silence(self, sites: Iterable[SimSite], seconds: float) -> None:
        """Stop heartbeats of `sites` for `seconds` (socket left open)."""
        until = time.monotonic() + seconds
        for site in sites:
            site.silent_until = until
