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
import gc
import hashlib
import hmac
import json
import math
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

from profiling import Spy

SWEEP_S = 0.1  # PresenceConfig.sweep_s
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
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def _proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _proc_cpu_s(pid: int, *, kernel_only: bool = False) -> float:
    """CPU seconds of a process so far (user + system, or system alone)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[12]) if kernel_only else int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


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
        welcome = {
            "type": "welcome",
            "site_id": sid,
            "server_time": time.time(),
            "heartbeat_s": args.heartbeat,
        }
        await ws.send(json.dumps(welcome))
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
        # The product's rule (presence/deadlines.py): a stall of this server's own loop
        # within the allowed silence is added to it, so a busy floor does not cut
        # healthy sites whose heartbeats waited unread in its sockets.
        stalls: list[tuple[float, float]] = []
        last = time.monotonic()
        while True:
            await asyncio.sleep(SWEEP_S)
            now = time.monotonic()
            stalls = [(t, d) for t, d in stalls if t >= now - args.offline_after]
            stalls.append((now, max(0.0, now - last - SWEEP_S)))
            last = now
            deadline = now - args.offline_after - max(d for _, d in stalls)
            for sid in [s for s, t in last_seen.items() if t < deadline and s in live]:
                ws = live.pop(sid)
                _emit({"ev": "offline", "site": sid, "t": time.time()})
                ws.transport.abort()

    async def settle_heap() -> None:
        # What `presence.tuning.HeapSettler` does in the product for a growing crowd
        # (not imported: the presence package would weigh on the floor's memory).
        crowd = 0
        while True:
            await asyncio.sleep(1.0)
            if len(live) - crowd >= 256:
                gc.collect(0)
                gc.freeze()
                crowd = len(live)

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
        settler = asyncio.create_task(settle_heap())
        stdin = await _stdin_lines()
        while True:
            line = (await stdin.readline()).decode().strip()
            if not line or line == "quit":
                break
            if line == "follow":
                _emit({"ev": "ok"})
            elif line.startswith("bcast"):
                n = int(line.split()[1])
                t0 = time.time()
                msg = {"type": "msg", "kind": "bench", "body": {"n": n, "pad": "x" * 220}}
                body = json.dumps(msg, separators=(",", ":")).encode()
                frame = bytes((0x81, 126)) + len(body).to_bytes(2, "big") + body
                for ws in live.values():
                    if ws.protocol.state is State.OPEN:
                        ws.transport.write(frame)
                _emit({"ev": "bcast", "t": t0, "secs": time.time() - t0})
        sweeper.cancel()
        settler.cancel()


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
        if os.environ.get("BENCH_HEAP") == "off" and hub.heap is not None:
            hub.heap.grow_min = 1 << 30  # A/B: the sessions are never frozen (HeapSettler)

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
            elif line.startswith("bcast"):
                n = int(line.split()[1])
                t0 = time.time()
                await hub.broadcast("bench", "bench", {"n": n, "pad": "x" * 180})
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

    async def ask(self, command: str, timeout: float = 300) -> dict[str, Any]:
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


async def _one_run(
    variant: str,
    protocol: int,
    workdir: Path,
    db_url: str,
    codes_file: Path,
    args: argparse.Namespace,
) -> dict[str, float]:
    from diemcau.presence.config import PresenceConfig
    from diemcau.sim.light_procs import SwarmProcesses

    heartbeat_s, offline_after_s = PresenceConfig().timing(protocol)
    common = ("--loop", args.loop)
    if variant == "bare":
        server = await _spawn(
            "bare", "--codes", str(codes_file), "--heartbeat", str(heartbeat_s),
            "--offline-after", str(offline_after_s), *common,
        )  # fmt: skip
    else:
        server = await _spawn(
            "product", "--db", db_url, "--data", str(workdir), "--port", str(_free_port()),
            *common,
        )  # fmt: skip
    lat: list[float] = []
    offline: list[float] = []
    try:
        ready = await server.first()
        swarm = SwarmProcesses(
            "127.0.0.1",
            int(ready["port"]),
            str(ready["path"]),
            codes_file,
            parts=args.swarm_procs,
            version=protocol,
            watch=["bench:n"],
        )
        await swarm.start()
        try:
            await asyncio.sleep(0.5)
            pid = server.proc.pid
            rss_idle = _proc_rss_mb(pid)
            cpu_join0 = _proc_cpu_s(pid)
            spy = await Spy.start(pid, f"{variant}-v{protocol}-join")
            joined = await swarm.connect()
            await spy.stop()
            cpu_join = _proc_cpu_s(pid) - cpu_join0
            everyone = joined["n"] + joined["failed"] >= _count_codes(codes_file)
            if joined["failed"] or not everyone:
                print(
                    f"  {variant}: {joined['n']} sites joined, {joined['failed']} failed",
                    file=sys.stderr,
                )
            await asyncio.sleep(1.0)
            rss = _proc_rss_mb(pid)
            spy = await Spy.start(pid, f"{variant}-v{protocol}-steady")
            hb0 = (await swarm.counts()).get("heartbeats sent", 0)
            cpu0, sys0, t0 = _proc_cpu_s(pid), _proc_cpu_s(pid, kernel_only=True), time.monotonic()
            await asyncio.sleep(5.0)
            cpu = (_proc_cpu_s(pid) - cpu0) / (time.monotonic() - t0) * 100
            cpu_sys = (_proc_cpu_s(pid, kernel_only=True) - sys0) / (time.monotonic() - t0) * 100
            hb_rate = ((await swarm.counts()).get("heartbeats sent", 0) - hb0) / (
                time.monotonic() - t0
            )
            await spy.stop()
            await server.ask("follow")
            sent: dict[int, float] = {}
            spy = await Spy.start(pid, f"{variant}-v{protocol}-bcast")
            for i in range(BROADCASTS):
                got = await server.ask(f"bcast {i}")
                sent[i] = float(got["t"])
                deadline = time.monotonic() + 10
                while (await swarm.counts()).get(f"bench:n={i}", 0) < joined["n"]:
                    if time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.05)
                if os.environ.get("BENCH_VERBOSE"):
                    print(
                        f"    bcast: call {got['secs'] * 1000:.1f} ms "
                        f"(store {got.get('store', 0) * 1000:.1f}, "
                        f"fan-out {got.get('fanout', 0) * 1000:.1f})",
                        file=sys.stderr,
                    )
                await asyncio.sleep(0.3)
            await spy.stop()
            for key, times in (await swarm.arrivals()).items():
                t_sent = sent.get(int(key.rsplit("=", 1)[1]))
                if t_sent is not None:
                    lat += [t - t_sent for t in times]
            lat.sort()
            server.events.clear()
            wanted, silenced_at = await swarm.silence(SILENCED)
            deadline = time.monotonic() + 15
            while {e["site"] for e in server.events} < wanted and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            offline = sorted(e["t"] - silenced_at for e in server.events if e["site"] in wanted)
        finally:
            await swarm.stop()
    finally:
        await server.stop()
    return {
        "heartbeat_s": heartbeat_s,
        "sites": joined["n"],
        "connect_s": joined["secs"] if everyone and not joined["failed"] else float("nan"),
        "join_cpu_s": cpu_join,
        "p50_ms": _pct(lat, 0.5) * 1000,
        "p99_ms": _pct(lat, 0.99) * 1000,
        "offline_med_s": statistics.median(offline) if offline else float("nan"),
        "offline_max_s": offline[-1] if offline else float("nan"),
        "offline_n": len(offline),
        "rss_mb": rss,
        "kb_per_site": (rss - rss_idle) * 1024 / max(1, joined["n"]),
        "cpu_pct": cpu,
        "hb_rate_k": hb_rate / 1000,
        "cpu_sys_pct": cpu_sys,
    }


def _count_codes(codes_file: Path) -> int:
    return len(codes_file.read_text().split())


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
    """The median of the runs that measured it (a failed join leaves NaN)."""
    kept = [v for v in values if not math.isnan(v)]
    if not kept:
        return "-"
    text = format(statistics.median(kept), spec)
    return text if len(kept) == len(values) else f"{text} ({len(kept)}/{len(values)})"


async def _orchestrate(args: argparse.Namespace) -> None:
    rows: list[tuple[str, str, dict[str, list[float]]]] = []
    protocols = [int(p) for p in args.protocols.split(",")]
    variants = args.variants.split(",")
    for dataset in args.datasets.split(","):
        workdir = Path(tempfile.mkdtemp(prefix=f"diemcau-bench-{dataset}-"))
        try:
            t = time.monotonic()
            url, codes_file = await _prepare(dataset, workdir)
            print(f"{dataset}: store ready in {time.monotonic() - t:.1f} s", file=sys.stderr)
            results: dict[tuple[int, str], dict[str, list[float]]] = {}
            for run in range(args.runs):
                for protocol in protocols:
                    for variant in variants:
                        r = await _one_run(variant, protocol, workdir, url, codes_file, args)
                        print(
                            f"  run {run + 1} v{protocol} {variant}: {_short(r)}", file=sys.stderr
                        )
                        for k, v in r.items():
                            results.setdefault((protocol, variant), {}).setdefault(k, []).append(v)
            rows += [(dataset, f"v{p} {v}", results[(p, v)]) for p in protocols for v in variants]
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
        ("heartbeat_s", "hb s", ".2f"),
        ("sites", "sites", ".0f"),
        ("connect_s", "connect s", ".2f"),
        ("join_cpu_s", "join CPU s", ".2f"),
        ("p50_ms", "bcast p50 ms", ".0f"),
        ("p99_ms", "bcast p99 ms", ".0f"),
        ("offline_med_s", "offline med s", ".2f"),
        ("offline_max_s", "offline max s", ".2f"),
        ("rss_mb", "RSS MB", ".0f"),
        ("kb_per_site", "KB/site", ".1f"),
        ("hb_rate_k", "hb k/s sent", ".1f"),
        ("cpu_pct", "CPU % core", ".1f"),
        ("cpu_sys_pct", "of it kernel", ".1f"),
    ]
    header = ["dataset", "server"] + [c[1] for c in cols]
    table = [header]
    by: dict[tuple[str, str], dict[str, dict[str, list[float]]]] = {}
    for dataset, label, res in rows:
        protocol, variant = label.split()
        by.setdefault((dataset, protocol), {})[variant] = res
        table.append([dataset, label] + [_fmt(res.get(k, []), f) for k, _, f in cols])
    for (dataset, protocol), pair in by.items():
        if "bare" in pair and "product" in pair:
            ratio = ["-", "-"]
            for k, _, _f in cols[2:]:
                b = [v for v in pair["bare"].get(k, []) if not math.isnan(v)]
                p = [v for v in pair["product"].get(k, []) if not math.isnan(v)]
                if b and p and statistics.median(b) > 0:
                    ratio.append(f"{statistics.median(p) / statistics.median(b):.2f}x")
                else:
                    ratio.append("-")
            table.append([dataset, f"{protocol} ratio"] + ratio)
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    print(
        f"Presence bench: median of {runs} run(s); v1/v2 = hello version (heartbeat interval"
        " in 'hb s'); product = control server (HTTP app + hub); ratio = product / bare"
    )
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
    p = sub.add_parser("bare")
    p.add_argument("--codes", required=True)
    p.add_argument("--heartbeat", type=float, required=True)
    p.add_argument("--offline-after", type=float, required=True)
    p.add_argument("--loop", default="uvloop")
    p = sub.add_parser("product")
    p.add_argument("--db", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--port", required=True)
    p.add_argument("--loop", default="uvloop")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--datasets", default="vn-2025,vn-legacy")
    parser.add_argument(
        "--variants", default="bare,product", help="servers to measure (profiling: one only)"
    )
    parser.add_argument(
        "--protocols",
        default="1,2",
        help="hello versions to measure: 1 = heartbeats every 1 s, 2 = every 0.25 s",
    )
    parser.add_argument("--swarm-procs", type=int, default=2, help="client processes")
    parser.add_argument(
        "--loop", default="uvloop", choices=("uvloop", "asyncio"), help="servers' event loop"
    )
    args = parser.parse_args(argv)
    roles: dict[str | None, Callable[[argparse.Namespace], Any]] = {
        "bare": _bare_main,
        "product": _product_main,
        None: _orchestrate,
    }
    from diemcau.presence.tuning import run_with_loop

    run_with_loop(roles[args.role](args), args.loop if args.role else "asyncio")


if __name__ == "__main__":
    main()
