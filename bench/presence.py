"""Presence bench: every site of the country on one control server, next to the bare floor.

Run: ``.venv/bin/python bench/presence.py [--runs 3] [--datasets vn-2025,vn-legacy]``

For each dataset (``vn-2025``: 3,355 sites; ``vn-legacy``: 10,794 as shipped) the directory
is loaded into a temporary SQLite store and every site gets a credential. Then,
for each run, two servers are measured one after the other with the same
client swarm (docs/performance.md: the bare floor printed beside the product, in the
same run, so the ratio survives a noisy machine):

* ``bare``: a bare `websockets` server: HMAC-checked hello, a small welcome,
  heartbeats recorded, a 250 ms sweep for silent sockets, and a broadcast that
  writes one prebuilt frame to every socket. No application logic; the same
  garbage-collector settings as the product (without them the bare server
  itself spends most of a national join in full collections).
* ``product``: the real control server (``build_runtime`` + FastAPI app under
  uvicorn, presence hub on its own port in the same event loop, SQLite), with
  a durable broadcast on a stream every site follows.

The client swarm is a separate process (so it does not share the server's
core) speaking raw WebSocket over asyncio protocols: a prebuilt upgrade
request, a prebuilt hello per site, one prebuilt heartbeat frame, and frame
parsing by hand. It costs a fraction of what a `websockets` client would, so
the server is what is measured.

Measured per run and variant:

* ``connect``: first connection attempt to the last welcome (all sites online);
* ``bcast p50/p99``: 5 broadcasts of a ~300-byte message; latency from just before
  the server's broadcast call to receipt at each site (same clock, one machine);
* ``offline``: 20 sites stop heartbeating (socket left open); from that moment to
  the server marking each offline (median and max). Heartbeats every 1 s, offline
  after 2.5 s of silence, so the expected median is ~2 s;
* ``RSS``: server resident memory with every site connected;
* ``CPU``: server CPU, % of one core, over 5 s with all sites heartbeating.

The table shows the median over runs, and product/bare ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HEARTBEAT_S = 1.0
OFFLINE_AFTER_S = 2.5
SILENCED = 20
BROADCASTS = 5


# --- helpers ----------------------------------------------------------------------------------


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def _stdin_lines() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


def _raise_fd_limit() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _tune_gc() -> None:
    """What `presence.tuning.tune_process_gc` does in the product, for the bare server."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def _masked_frame(payload: bytes) -> bytes:
    """A client text frame. The mask key is zero (RFC 6455 allows any 32-bit key; a
    benchmark client skips the XOR so the swarm stays light)."""
    n = len(payload)
    if n < 126:
        head = bytes((0x81, 0x80 | n))
    elif n < 65536:
        head = bytes((0x81, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x81, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + b"\x00\x00\x00\x00" + payload


def _proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the light client swarm (its own process) ---------------------------------------------------


class _Conn(asyncio.Protocol):
    __slots__ = ("swarm", "idx", "transport", "buf", "upgraded", "welcomed", "site_id", "closed")

    def __init__(self, swarm: _Swarm, idx: int) -> None:
        self.swarm = swarm
        self.idx = idx
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.upgraded = False
        self.welcomed = False
        self.site_id = -1
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.swarm.upgrade)

    def data_received(self, data: bytes) -> None:
        if not self.upgraded:
            self.buf += data
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.buf.startswith(b"HTTP/1.1 101"):
                self.swarm.failed += 1
                assert self.transport is not None
                self.transport.close()
                return
            rest = self.buf[end + 4 :]
            self.buf = b""
            self.upgraded = True
            assert self.transport is not None
            self.transport.write(self.swarm.hellos[self.idx])
            if not rest:
                return
            data = rest
        buf = self.buf + data if self.buf else data
        pos, n = 0, len(buf)
        while n - pos >= 2:
            b1 = buf[pos + 1] & 0x7F
            if b1 == 126:
                if n - pos < 4:
                    break
                size, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif b1 == 127:
                if n - pos < 10:
                    break
                size, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            else:
                size, head = b1, 2
            if n - pos < head + size:
                break
            opcode = buf[pos] & 0x0F
            payload = buf[pos + head : pos + head + size]
            pos += head + size
            self.swarm.on_frame(self, opcode, payload)
        self.buf = buf[pos:]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.swarm.on_lost(self)


class _Swarm:
    def __init__(self, host: str, port: int, path: str, codes: list[str]) -> None:
        self.host, self.port = host, port
        key = base64.b64encode(secrets.token_bytes(16)).decode()
        self.upgrade = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        self.hellos = [
            _masked_frame(json.dumps({"type": "hello", "v": 1, "join_code": c}).encode())
            for c in codes
        ]
        self.hb = _masked_frame(b'{"type":"hb"}')
        self.conns: list[_Conn] = []
        self.welcomed = 0
        self.failed = 0
        self.lost = 0
        self.latencies: list[float] = []
        self.silent: set[int] = set()
        self._all_in = asyncio.Event()
        self._gate = asyncio.Semaphore(1000)
        self.n = len(codes)

    def on_frame(self, conn: _Conn, opcode: int, payload: bytes) -> None:
        if opcode == 0x8:
            if conn.transport is not None:
                conn.transport.close()
            return
        if not conn.welcomed:
            msg = json.loads(payload)
            if msg.get("type") != "welcome":
                self.failed += 1
                return
            conn.welcomed = True
            conn.site_id = int(msg["site_id"])
            self.welcomed += 1
            self._gate.release()
            if self.welcomed + self.failed >= self.n:
                self._all_in.set()
            return
        i = payload.find(b'"bench_t":')
        if i >= 0:
            j = i + 10
            k = j
            while payload[k] not in b",}":
                k += 1
            self.latencies.append(time.time() - float(payload[j:k]))

    def on_lost(self, conn: _Conn) -> None:
        self.lost += 1
        if not conn.welcomed:
            self.failed += 1
            self._gate.release()
            if self.welcomed + self.failed >= self.n:
                self._all_in.set()

    async def connect_all(self) -> float:
        loop = asyncio.get_running_loop()
        t0 = time.monotonic()
        for i in range(self.n):
            await self._gate.acquire()
            conn = _Conn(self, i)
            self.conns.append(conn)
            try:
                await loop.create_connection(lambda c=conn: c, self.host, self.port)  # type: ignore[misc]
            except OSError:
                self.failed += 1
                self._gate.release()
        await asyncio.wait_for(self._all_in.wait(), 120)
        return time.monotonic() - t0

    async def heartbeats(self) -> None:
        slices = 10
        tick = 0
        while True:
            await asyncio.sleep(HEARTBEAT_S / slices)
            part = tick % slices
            tick += 1
            for conn in self.conns[part::slices]:
                if conn.welcomed and not conn.closed and conn.idx not in self.silent:
                    assert conn.transport is not None
                    conn.transport.write(self.hb)


async def _swarm_main(args: argparse.Namespace) -> None:
    _raise_fd_limit()
    codes = Path(args.codes).read_text().split()
    swarm = _Swarm(args.host, args.port, args.path, codes)
    stdin = await _stdin_lines()
    beats: asyncio.Task[None] | None = None
    _emit({"ev": "ready"})
    while True:
        line = (await stdin.readline()).decode().strip()
        if not line or line == "quit":
            break
        cmd, *rest = line.split()
        if cmd == "connect":
            beats = asyncio.create_task(swarm.heartbeats())
            secs = await swarm.connect_all()
            _emit({"ev": "joined", "n": swarm.welcomed, "failed": swarm.failed, "secs": secs})
        elif cmd == "lat":
            lat = sorted(swarm.latencies)
            values = [round(v, 6) for v in lat] if rest == ["all"] else []
            _emit({"ev": "lat", "n": len(lat), "values": values})
        elif cmd == "lat_reset":
            swarm.latencies.clear()
            _emit({"ev": "ok"})
        elif cmd == "silence":
            k = int(rest[0])
            step = max(1, swarm.n // k)
            picked = [c for c in swarm.conns[::step] if c.welcomed][:k]
            swarm.silent.update(c.idx for c in picked)
            _emit({"ev": "silenced", "sites": [c.site_id for c in picked], "t": time.time()})
    if beats is not None:
        beats.cancel()
    for conn in swarm.conns:
        if conn.transport is not None:
            conn.transport.abort()


# --- the bare floor server (its own process) ----------------------------------------------------


async def _bare_main(args: argparse.Namespace) -> None:
    from websockets.asyncio.server import ServerConnection, serve
    from websockets.exceptions import ConnectionClosed
    from websockets.protocol import State

    _raise_fd_limit()
    _tune_gc()  # the same process settings as the product: the floor is the library's best
    key = secrets.token_bytes(32)
    digests: dict[str, tuple[int, bytes]] = {}
    for i, code in enumerate(Path(args.codes).read_text().split()):
        site, secret = code.rsplit(":", 1)
        digests[site] = (i, hmac.new(key, secret.encode(), hashlib.sha256).digest())
    live: dict[int, ServerConnection] = {}
    last_seen: dict[int, float] = {}

    async def handler(ws: ServerConnection) -> None:
        hello = json.loads(await ws.recv())
        site, secret = str(hello.get("join_code", "")).rsplit(":", 1)
        entry = digests.get(site)
        mac = hmac.new(key, secret.encode(), hashlib.sha256).digest()
        if entry is None or not hmac.compare_digest(entry[1], mac):
            await ws.close(4001, "unauthorized")
            return
        sid = entry[0]
        await ws.send(json.dumps({"type": "welcome", "site_id": sid, "server_time": time.time()}))
        live[sid] = ws
        last_seen[sid] = time.monotonic()
        try:
            async for _ in ws:
                last_seen[sid] = time.monotonic()
        except ConnectionClosed:
            pass
        finally:
            if live.get(sid) is ws:
                del live[sid]

    async def sweep() -> None:
        while True:
            await asyncio.sleep(0.25)
            deadline = time.monotonic() - OFFLINE_AFTER_S
            for sid in [s for s, t in last_seen.items() if t < deadline and s in live]:
                ws = live.pop(sid)
                _emit({"ev": "offline", "site": sid, "t": time.time()})
                ws.transport.abort()

    async with serve(
        handler,
        "127.0.0.1",
        0,
        compression=None,
        ping_interval=None,
        max_size=65536,
        backlog=4096,
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        _emit({"ev": "ready", "port": port, "path": "/"})
        sweeper = asyncio.create_task(sweep())
        stdin = await _stdin_lines()
        while True:
            line = (await stdin.readline()).decode().strip()
            if not line or line == "quit":
                break
            if line == "follow":
                _emit({"ev": "ok"})
            elif line == "bcast":
                t0 = time.time()
                body = json.dumps({"type": "msg", "bench_t": t0, "pad": "x" * 220}).encode()
                frame = bytes((0x81, 126)) + len(body).to_bytes(2, "big") + body
                for ws in live.values():
                    if ws.protocol.state is State.OPEN:
                        ws.transport.write(frame)
                _emit({"ev": "bcast", "t": t0, "secs": time.time() - t0})
        sweeper.cancel()


# --- the product server (its own process) -------------------------------------------------------


async def _product_main(args: argparse.Namespace) -> None:
    from diemcau.api.server import serve
    from diemcau.config import Settings
    from diemcau.presence.hub import PresenceChange, PresenceHub
    from diemcau.runtime import Runtime

    _raise_fd_limit()
    pauses = _watch_gc() if os.environ.get("BENCH_VERBOSE") else None
    http_port = int(args.port)
    settings = Settings(
        data_dir=Path(args.data), database_url=args.db, host="127.0.0.1", port=http_port
    )
    stop = asyncio.Event()

    async def ready(runtime: Runtime) -> None:
        hub = runtime.presence
        assert isinstance(hub, PresenceHub)

        def on_change(change: PresenceChange) -> None:
            if change.new == "offline" and change.reason == "heartbeat_timeout":
                _emit({"ev": "offline", "site": change.site_id, "t": change.at.timestamp()})

        hub.add_listener(on_change)
        _emit({"ev": "ready", "port": hub.port, "path": hub.config.path})
        stdin = await _stdin_lines()
        while True:
            line = (await stdin.readline()).decode().strip()
            if not line or line == "quit":
                break
            if line == "follow":
                await hub.follow("bench", list(hub.site_infos()))
                _emit({"ev": "ok"})
            elif line == "bcast":
                t0 = time.time()
                await hub.broadcast("bench", "bench", {"bench_t": t0, "pad": "x" * 180})
                writer = hub.writer
                _emit(
                    {
                        "ev": "bcast",
                        "t": t0,
                        "secs": time.time() - t0,
                        "store": writer.last_store_s,
                        "fanout": writer.last_fanout_s,
                    }
                )
        stop.set()

    await serve(settings, on_ready=ready, stop=stop)
    if pauses is not None:
        worst = sorted(pauses, reverse=True)[:5]
        print(
            f"    gc: {len(pauses)} full collections, worst {[round(p * 1000) for p in worst]} ms",
            file=sys.stderr,
        )


def _watch_gc() -> list[float]:
    """Record garbage-collection pauses (diagnostics for latency outliers)."""
    import gc

    pauses: list[float] = []
    started = [0.0]

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        elif info.get("generation") == 2:
            pauses.append(time.perf_counter() - started[0])

    gc.callbacks.append(callback)
    return pauses


# --- orchestration ------------------------------------------------------------------------------


class _Child:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.events: list[dict[str, Any]] = []
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                return
            try:
                ev = json.loads(line)
            except json.JSONDecodeError:
                continue
            if ev.get("ev") == "offline":
                self.events.append(ev)
            else:
                await self._queue.put(ev)

    async def ask(self, command: str, timeout: float = 120) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write((command + "\n").encode())
        await self.proc.stdin.drain()
        return await asyncio.wait_for(self._queue.get(), timeout)

    async def first(self, timeout: float = 120) -> dict[str, Any]:
        return await asyncio.wait_for(self._queue.get(), timeout)

    async def stop(self) -> None:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(b"quit\n")
            await self.proc.stdin.drain()
            await asyncio.wait_for(self.proc.wait(), 20)
        except (TimeoutError, ConnectionError):
            self.proc.kill()
            await self.proc.wait()
        self._reader.cancel()


async def _spawn(*argv: str) -> _Child:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=None,
        limit=1 << 26,
    )
    return _Child(proc)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


async def _one_run(variant: str, workdir: Path, db_url: str, codes_file: Path) -> dict[str, float]:
    if variant == "bare":
        server = await _spawn("bare", "--codes", str(codes_file))
    else:
        server = await _spawn(
            "product", "--db", db_url, "--data", str(workdir), "--port", str(_free_port())
        )
    try:
        ready = await server.first()
        swarm = await _spawn(
            "swarm", "--codes", str(codes_file), "--port", str(ready["port"]), "--path",
            ready["path"],
        )  # fmt: skip
        try:
            await swarm.first()
            await asyncio.sleep(0.5)
            rss_idle = _proc_rss_mb(server.proc.pid)
            joined = await swarm.ask("connect")
            if joined["failed"]:
                print(f"  {variant}: {joined['failed']} sites failed to join", file=sys.stderr)
            await asyncio.sleep(1.0)
            rss = _proc_rss_mb(server.proc.pid)
            cpu0, t0 = _proc_cpu_s(server.proc.pid), time.monotonic()
            await asyncio.sleep(5.0)
            cpu = (_proc_cpu_s(server.proc.pid) - cpu0) / (time.monotonic() - t0) * 100
            await server.ask("follow")
            lat: list[float] = []
            for _ in range(BROADCASTS):
                await swarm.ask("lat_reset")
                sent = await server.ask("bcast")
                deadline = time.monotonic() + 10
                while True:
                    got = await swarm.ask("lat")
                    if got["n"] >= joined["n"] or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.05)
                values = (await swarm.ask("lat all"))["values"]
                if os.environ.get("BENCH_VERBOSE"):
                    print(
                        f"    bcast: call {sent['secs'] * 1000:.1f} ms "
                        f"(store {sent.get('store', 0) * 1000:.1f}, "
                        f"fan-out {sent.get('fanout', 0) * 1000:.1f}), n {len(values)}, "
                        f"p50 {_pct(values, 0.5) * 1000:.0f} p99 {_pct(values, 0.99) * 1000:.0f}",
                        file=sys.stderr,
                    )
                lat += values
                await asyncio.sleep(0.3)
            lat.sort()
            server.events.clear()
            silenced = await swarm.ask(f"silence {SILENCED}")
            wanted = set(silenced["sites"])
            deadline = time.monotonic() + 15
            while {e["site"] for e in server.events} < wanted and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            offline = sorted(e["t"] - silenced["t"] for e in server.events if e["site"] in wanted)
        finally:
            await swarm.stop()
    finally:
        await server.stop()
    return {
        "sites": joined["n"],
        "connect_s": joined["secs"],
        "p50_ms": _pct(lat, 0.5) * 1000,
        "p99_ms": _pct(lat, 0.99) * 1000,
        "offline_med_s": statistics.median(offline) if offline else float("nan"),
        "offline_max_s": offline[-1] if offline else float("nan"),
        "offline_n": len(offline),
        "rss_mb": rss,
        "kb_per_site": (rss - rss_idle) * 1024 / max(1, joined["n"]),
        "cpu_pct": cpu,
    }


def _free_port() -> int:
    import socket

    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        with socket.socket() as s:  # the presence socket takes port + 1
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port


async def _prepare(dataset: str, workdir: Path) -> tuple[str, Path]:
    from diemcau.directory import datasets, service
    from diemcau.sim.cli import provision_sim_codes
    from diemcau.store import Database, migrate

    url = f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    await migrate(url)
    db = Database(url)
    try:
        await service.load_units(db, datasets.load_dataset(dataset), dataset=dataset)
    finally:
        await db.dispose()
    codes = await provision_sim_codes(url, dataset, None)
    codes_file = workdir / "codes.txt"
    random.Random(7).shuffle(codes)  # noqa: S311 - join order, not security
    codes_file.write_text("\n".join(codes) + "\n")
    return url, codes_file


def _fmt(values: list[float], spec: str) -> str:
    return format(statistics.median(values), spec) if values else "-"


async def _orchestrate(args: argparse.Namespace) -> None:
    rows: list[tuple[str, str, dict[str, list[float]]]] = []
    for dataset in args.datasets.split(","):
        workdir = Path(tempfile.mkdtemp(prefix=f"diemcau-bench-{dataset}-"))
        try:
            t = time.monotonic()
            url, codes_file = await _prepare(dataset, workdir)
            print(f"{dataset}: store ready in {time.monotonic() - t:.1f} s", file=sys.stderr)
            results: dict[str, dict[str, list[float]]] = {"bare": {}, "product": {}}
            for run in range(args.runs):
                for variant in ("bare", "product"):
                    r = await _one_run(variant, workdir, url, codes_file)
                    print(f"  run {run + 1} {variant}: {_short(r)}", file=sys.stderr)
                    for k, v in r.items():
                        results[variant].setdefault(k, []).append(v)
            rows += [(dataset, v, results[v]) for v in ("bare", "product")]
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    _print_table(rows, args.runs)


def _short(r: dict[str, float]) -> str:
    return (
        f"{int(r['sites'])} sites, connect {r['connect_s']:.2f}s, bcast p50 {r['p50_ms']:.0f} "
        f"p99 {r['p99_ms']:.0f} ms, offline {r['offline_med_s']:.2f}/{r['offline_max_s']:.2f}s "
        f"({int(r['offline_n'])}), RSS {r['rss_mb']:.0f} MB ({r['kb_per_site']:.1f} KB/site), "
        f"CPU {r['cpu_pct']:.1f}%"
    )


def _print_table(rows: list[tuple[str, str, dict[str, list[float]]]], runs: int) -> None:
    cols = [
        ("sites", "sites", ".0f"),
        ("connect_s", "connect s", ".2f"),
        ("p50_ms", "bcast p50 ms", ".0f"),
        ("p99_ms", "bcast p99 ms", ".0f"),
        ("offline_med_s", "offline med s", ".2f"),
        ("offline_max_s", "offline max s", ".2f"),
        ("rss_mb", "RSS MB", ".0f"),
        ("kb_per_site", "KB/site", ".1f"),
        ("cpu_pct", "CPU % core", ".1f"),
    ]
    header = ["dataset", "server"] + [c[1] for c in cols]
    table = [header]
    by: dict[str, dict[str, dict[str, list[float]]]] = {}
    for dataset, variant, res in rows:
        by.setdefault(dataset, {})[variant] = res
        table.append([dataset, variant] + [_fmt(res.get(k, []), f) for k, _, f in cols])
    for dataset, pair in by.items():
        if "bare" in pair and "product" in pair:
            ratio = ["-"]
            for k, _, _f in cols[1:]:
                b, p = pair["bare"].get(k, []), pair["product"].get(k, [])
                if b and p and statistics.median(b) > 0:
                    ratio.append(f"{statistics.median(p) / statistics.median(b):.2f}x")
                else:
                    ratio.append("-")
            table.append([dataset, "ratio"] + ratio)
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    print(f"Presence bench: median of {runs} run(s); product = control server (HTTP app + hub)")
    for i, r in enumerate(table):
        print(
            "  ".join(
                c.rjust(w) if j > 1 else c.ljust(w)
                for j, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )
        if i == 0:
            print("  ".join("-" * w for w in widths))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="role")
    p = sub.add_parser("swarm")
    p.add_argument("--codes", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", default="/site")
    p = sub.add_parser("bare")
    p.add_argument("--codes", required=True)
    p = sub.add_parser("product")
    p.add_argument("--db", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--port", required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--datasets", default="vn-2025,vn-legacy")
    args = parser.parse_args(argv)
    roles: dict[str | None, Callable[[argparse.Namespace], Any]] = {
        "swarm": _swarm_main,
        "bare": _bare_main,
        "product": _product_main,
        None: _orchestrate,
    }
    asyncio.run(roles[args.role](args))


if __name__ == "__main__":
    main()
