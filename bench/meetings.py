"""Meetings bench: a national meeting on the real control server, every invited site attending.

Run: ``.venv/bin/python bench/meetings.py [--dataset vn-2025|vn-legacy] [--runs 3] [--rounds 20]``

In a temporary SQLite store this loads the dataset and gives every invited site a
credential: ``vn-2025``, its 3,321 communes; ``vn-legacy``, the whole country
(10,794 sites, every site but the chair's). Per run, the real control server
(``build_runtime`` + the HTTP app under uvicorn, presence hub on its own port,
exactly as ``diemcau serve`` builds it) runs in a child process, and the sites
are the light swarm (`diemcau.sim.light_procs`) spread over ``--swarm-procs``
processes: raw WebSocket, prebuilt frames, heartbeats at the interval their
welcome says, and no JSON decoding after the welcome. A site answers
"meeting.started" with a prebuilt "meeting.join" request and stamps the
wall-clock arrival of "floor.changed" (by floor version) and "bench.ping" (by
number) by looking for those bytes. Earlier versions used the full-protocol
simulator in one process, whose own loop added ~200 ms to the p99 of a 3,321-site
fan-out (docs/performance.md).

Measured per run (the table shows the median over runs):

* ``online``: swarm start to the last welcome;
* ``notified p50/p99``: the chair's start call to the arrival of "meeting.started";
* ``start → every site present``: from the chair's start call until each site's
  join was handled and stored;
* ``floor grant p50/p99``: per grant (``--rounds``), from the chair's call to each
  site's arrival of "floor.changed" (persist + audit + broadcast), pooled over rounds;
* ``bare broadcast p50/p99``: the same message size sent with ``hub.broadcast``
  alone on the meeting stream in the same run (stored, like every broadcast), and
  ``ratio`` = floor / bare: the meeting layer's own cost;
* ``first grant p99``: the first decision right after the mass join, on its own;
* attendance summary, CSV and HTML report, end call (ms);
* ``peak RSS``: the server's high-water resident memory (``VmHWM``) over the run.

Diagnostics: ``BENCH_PROFILE=DIR`` writes a py-spy profile of the server from the
start call to every site present (`bench/profiling.py`); ``BENCH_TRACEMALLOC=1``
prints the allocations that grew from "every site online" to "every site in the
meeting" (after a collection);
``BENCH_MAX_RUNNING=N`` sets how many site requests the server runs at once;
``BENCH_HEAP=off`` leaves the sessions unfrozen (A/B of `presence.tuning.HeapSettler`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from profiling import GcPauses, Spy

JOIN_REQUEST = json.dumps({"type": "req", "id": "join", "kind": "meeting.join", "body": {}})


def _pct(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _proc_mem_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- the control server (child process) -----------------------------------------------------


async def _server_main(args: argparse.Namespace) -> None:
    from diemcau.actors import Actor
    from diemcau.api.server import serve
    from diemcau.config import Settings
    from diemcau.meetings import InviteSpec
    from diemcau.runtime import Runtime
    from diemcau.sim.sites import raise_fd_limit

    raise_fd_limit()
    if os.environ.get("BENCH_TRACEMALLOC"):
        import tracemalloc

        tracemalloc.start(int(os.environ["BENCH_TRACEMALLOC"]))
    settings = Settings(
        data_dir=Path(args.data), database_url=args.db, host="127.0.0.1", port=int(args.port)
    )
    stop = asyncio.Event()
    chair = Actor.for_staff("chair", "chair", user_id=args.chair_id)
    site_ids = [int(x) for x in Path(args.site_ids).read_text().split()]

    async def ready(runtime: Runtime) -> None:
        hub, svc = runtime.presence, runtime.meetings
        snapshots: list[Any] = []
        if os.environ.get("BENCH_MAX_RUNNING"):  # A/B of the request bound (RequestRouter)
            hub.router.max_running = int(os.environ["BENCH_MAX_RUNNING"])
        if os.environ.get("BENCH_HEAP") == "off" and hub.heap is not None:
            hub.heap.grow_min = 1 << 30  # A/B: the sessions are never frozen (HeapSettler)
        _emit({"ev": "ready", "port": hub.port, "path": hub.config.path})
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        meeting_id = 0
        while True:
            line = (await reader.readline()).decode().strip()
            if not line or line == "quit":
                break
            cmd, *rest = line.split()
            if cmd == "meeting":
                invite = (
                    InviteSpec(everyone=True)
                    if rest[0] == "everyone"
                    else InviteSpec(everyone=True, kinds=("commune",))
                )
                m = await svc.lifecycle.create_meeting(
                    chair, title="Họp trực tuyến toàn quốc", invite=invite
                )
                meeting_id = m.id
                spy = await Spy.start(os.getpid(), "meetings-join")
                pending = set(site_ids)

                def present(mid: int = meeting_id, pending: set[int] = pending) -> int:
                    # Only the sites not seen present yet: the poll runs in the server's loop.
                    pending.difference_update(
                        [sid for sid in pending if svc.attendance.is_present(mid, sid)]
                    )
                    return len(site_ids) - len(pending)

                cpu0 = os.times()
                with GcPauses() as pauses:
                    t_start = time.time()
                    await svc.lifecycle.start_meeting(chair, m.id)
                    start_call = time.time() - t_start
                    try:
                        await _until(
                            lambda: present() >= len(site_ids), args.join_timeout, every=0.05
                        )
                        present_s = time.time() - t_start  # from the chair's call, as "notified"
                    except TimeoutError:
                        present_s = float("nan")
                cpu1 = os.times()
                await spy.stop()
                _emit(
                    {
                        "ev": "meeting",
                        "invited": m.invited_count,
                        "t_start": t_start,
                        "start_call_s": start_call,
                        "present_s": present_s,
                        "join_cpu_s": cpu1.user + cpu1.system - cpu0.user - cpu0.system,
                        "join_gc_ms": pauses.total_ms,
                        "join_full_gc_ms": pauses.full_ms,
                        "present": present(),
                        "online": len(hub.online_site_ids()),
                    }
                )
            elif cmd == "rounds":
                _emit(await _rounds(svc, hub, chair, meeting_id, site_ids, args))
            elif cmd == "trim":
                # Diagnostics: what a full collection and glibc's malloc_trim give back
                # (memory freed but kept by the allocators after the join storm).
                import ctypes
                import gc

                gc.collect()
                ctypes.CDLL("libc.so.6").malloc_trim(0)
                _emit({"ev": "trimmed"})
            elif cmd == "snap":
                _snapshot(snapshots)
                _emit({"ev": "snapped"})
            elif cmd == "reports":
                _emit(await _reports(svc, chair, meeting_id))
        stop.set()

    await serve(settings, on_ready=ready, stop=stop)


def _snapshot(snapshots: list[Any]) -> None:
    """Diagnostics (``BENCH_TRACEMALLOC=1``): the allocations grown since the last snapshot.

    Printed to stderr, top 20 by source line; without the variable, nothing.
    """
    if not os.environ.get("BENCH_TRACEMALLOC"):
        return
    import tracemalloc

    snap = tracemalloc.take_snapshot()
    if snapshots:
        grown = snap.compare_to(snapshots[-1], "lineno")
        print("  tracemalloc, grown since the last snapshot:", file=sys.stderr)
        for stat in grown[:20]:
            print(f"    {stat}", file=sys.stderr)
    snapshots.append(snap)


async def _rounds(
    svc: Any, hub: Any, chair: Any, meeting_id: int, site_ids: list[int], args: argparse.Namespace
) -> dict[str, Any]:
    """The first grant, `rounds` grants, then `rounds` bare broadcasts of the same size."""
    from diemcau.meetings.publisher import stream_of

    failures: list[str] = []
    floor_t0: dict[int, float] = {}
    t_first = time.time()
    first = await svc.floor.grant(chair, meeting_id, [site_ids[0]])
    await asyncio.sleep(args.settle)
    body_len = 300
    n = len(site_ids)
    for i in range(args.rounds):
        start_at = (i * 97) % n
        target = next(
            (
                sid
                for sid in site_ids[start_at:] + site_ids[:start_at]
                if svc.attendance.is_present(meeting_id, sid)
            ),
            None,
        )
        if target is None:
            failures.append(f"grant {i}: no site present")
            continue
        t0 = time.time()
        try:
            decision = await svc.floor.grant(chair, meeting_id, [target])
        except Exception as exc:  # reported, not fatal: the other rounds still count
            failures.append(f"grant {i}: {type(exc).__name__}")
            continue
        floor_t0[decision.version] = t0
        body_len = len(json.dumps(decision.as_dict()))
        await asyncio.sleep(args.gap)
    ping_t0: dict[int, float] = {}
    for i in range(args.rounds):
        t0 = time.time()
        try:
            await hub.broadcast(
                stream_of(meeting_id), "bench.ping", {"n": i, "pad": "x" * max(0, body_len - 40)}
            )
        except Exception as exc:
            failures.append(f"ping {i}: {type(exc).__name__}")
            continue
        ping_t0[i] = t0
        await asyncio.sleep(args.gap)
    return {
        "ev": "rounds",
        "first": [first.version, t_first],
        "floor": floor_t0,
        "ping": ping_t0,
        "failures": failures,
    }


async def _reports(svc: Any, chair: Any, meeting_id: int) -> dict[str, Any]:
    summary_s = await _median_time(lambda: svc.roll_call.summary(meeting_id))
    t_end = time.perf_counter()
    await svc.lifecycle.end_meeting(chair, meeting_id)
    end_s = time.perf_counter() - t_end
    csv_s = await _median_time(lambda: svc.roll_call.report_csv(meeting_id))
    html_s = await _median_time(lambda: svc.roll_call.report_html(meeting_id))
    return {
        "ev": "reports",
        "summary_s": summary_s,
        "end_s": end_s,
        "csv_s": csv_s,
        "html_s": html_s,
    }


async def _until(check: Callable[[], bool], timeout: float, every: float = 0.005) -> float:
    """Seconds until `check` holds (polled every `every` s), or raise after `timeout`."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise TimeoutError("bench step timed out")
        await asyncio.sleep(every)
    return time.monotonic() - started


async def _median_time(fn: Callable[[], Awaitable[Any]], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# --- orchestration (this process) -------------------------------------------------------------


class _Server:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def ask(self, command: str, timeout: float = 600) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if command:
            self.proc.stdin.write((command + "\n").encode())
            await self.proc.stdin.drain()
        while True:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
            if not line:
                raise RuntimeError(f"server ended (exit {await self.proc.wait()})")
            try:
                answer: dict[str, Any] = json.loads(line)
                return answer
            except json.JSONDecodeError:
                continue  # a stray line from a library

    async def stop(self) -> None:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(b"quit\n")
            await self.proc.stdin.drain()
            await asyncio.wait_for(self.proc.wait(), 60)
        except (TimeoutError, ConnectionError):
            self.proc.kill()
            await self.proc.wait()


async def _prepare(dataset: str, workdir: Path) -> tuple[str, Path, Path, int, bool]:
    """The store, the invited sites' codes and ids, the chair's id, whether all are invited."""
    from sqlalchemy import select

    from diemcau.directory import datasets, service
    from diemcau.sim.cli import provision_sim_codes
    from diemcau.store import Database, migrate
    from diemcau.store.models import Site, StaffUser

    url = f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    await migrate(url)
    db = Database(url)
    everyone = dataset != "vn-2025"  # vn-2025: its 3,321 communes; else the whole country
    try:
        await service.load_units(db, datasets.load_dataset(dataset), dataset=dataset)
        codes = await provision_sim_codes(url, dataset, None)
        async with db.session() as s:
            q = select(Site.id, Site.code).where(Site.kind != "chair")
            if not everyone:
                q = q.where(Site.kind == "commune")
            invited = {code: sid for sid, code in (await s.execute(q)).all()}
            user = StaffUser(username="chair", display_name="", password_hash="x", role="chair")
            s.add(user)
            await s.flush()
            chair_id = user.id
    finally:
        await db.dispose()
    kept = [c for c in codes if c.rsplit(":", 1)[0] in invited]
    codes_file = workdir / "codes.txt"
    codes_file.write_text("\n".join(kept) + "\n")
    ids_file = workdir / "site_ids.txt"
    ids_file.write_text("\n".join(str(invited[c.rsplit(":", 1)[0]]) for c in kept) + "\n")
    return url, codes_file, ids_file, chair_id, everyone


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


async def _one_run(
    args: argparse.Namespace, url: str, codes: Path, ids: Path, chair_id: int, everyone: bool
) -> dict[str, float]:
    from diemcau.sim.light_procs import SwarmProcesses

    n = len(ids.read_text().split())
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--server", "--db", url, "--data", str(ids.parent),
        "--port", str(_free_port()), "--site-ids", str(ids), "--chair-id", str(chair_id),
        "--rounds", str(args.rounds), "--gap", str(args.gap), "--settle", str(args.settle),
        "--join-timeout", str(args.join_timeout),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 26,
    )  # fmt: skip
    server = _Server(proc)
    out: dict[str, float] = {"sites": n}
    try:
        ready = await server.ask("", 300)
        swarm = SwarmProcesses(
            "127.0.0.1",
            int(ready["port"]),
            str(ready["path"]),
            codes,
            parts=args.swarm_procs,
            version=args.protocol,
            watch=["meeting.started", "floor.changed:version", "bench.ping:n"],
            answer=[("meeting.started", JOIN_REQUEST)],
        )
        await swarm.start()
        try:
            joined = await swarm.connect()
            out["online_s"] = joined["secs"] if joined["n"] >= n else float("nan")
            out["rss_joined_mb"] = _proc_mem_mb(proc.pid, "VmRSS")
            await server.ask("snap")
            meeting = await server.ask(f"meeting {'everyone' if everyone else 'communes'}")
            if meeting["invited"] != n:
                print(f"  invited {meeting['invited']} (expected {n})", file=sys.stderr)
            out["rss_present_mb"] = _proc_mem_mb(proc.pid, "VmRSS")
            out["hwm_present_mb"] = _proc_mem_mb(proc.pid, "VmHWM")
            await server.ask("trim")
            await server.ask("snap")
            out["rss_trimmed_mb"] = _proc_mem_mb(proc.pid, "VmRSS")
            out["start_call_ms"] = meeting["start_call_s"] * 1000
            out["present_s"] = meeting["present_s"]
            for key in ("join_cpu_s", "join_gc_ms", "join_full_gc_ms"):
                out[key] = meeting[key]
            if math.isnan(meeting["present_s"]):
                print(
                    f"  only {meeting['present']}/{n} present after {args.join_timeout:.0f} s "
                    f"({meeting['online']} online)",
                    file=sys.stderr,
                )
            rounds = await server.ask("rounds")
            out["hwm_rounds_mb"] = _proc_mem_mb(proc.pid, "VmHWM")
            await asyncio.sleep(2.0)  # stragglers
            arrivals = await swarm.arrivals()
            reports = await server.ask("reports")
            out["rss_peak_mb"] = _proc_mem_mb(proc.pid, "VmHWM")
        finally:
            await swarm.stop()
    finally:
        await server.stop()

    started = [t - meeting["t_start"] for t in arrivals.get("meeting.started=", [])]
    out["notified_p50_ms"] = _pct(started, 0.5) * 1000
    out["notified_p99_ms"] = _pct(started, 0.99) * 1000
    version, t_first = rounds["first"]
    first = [t - t_first for t in arrivals.get(f"floor.changed:version={version}", [])]
    out["first_p99_ms"] = _pct(first, 0.99) * 1000

    def pooled(spec: str, t0s: dict[str, float]) -> tuple[list[float], int]:
        got: list[float] = []
        fewest = n
        for key, t0 in t0s.items():
            times = [t - t0 for t in arrivals.get(f"{spec}={key}", [])]
            got += times
            fewest = min(fewest, len(times))
        return got, fewest if t0s else 0

    floor, floor_min = pooled("floor.changed:version", rounds["floor"])
    ping, ping_min = pooled("bench.ping:n", rounds["ping"])
    out["floor_p50_ms"] = _pct(floor, 0.5) * 1000
    out["floor_p99_ms"] = _pct(floor, 0.99) * 1000
    out["ping_p50_ms"] = _pct(ping, 0.5) * 1000
    out["ping_p99_ms"] = _pct(ping, 0.99) * 1000
    out["ratio_p99"] = out["floor_p99_ms"] / out["ping_p99_ms"]
    out["delivered_min"] = min(floor_min, ping_min)
    for k in ("summary_s", "end_s", "csv_s", "html_s"):
        out[k.replace("_s", "_ms")] = reports[k] * 1000
    if rounds["failures"]:
        print(f"  failed rounds: {'; '.join(rounds['failures'][:4])}", file=sys.stderr)
    return out


ROWS = [
    ("sites", "sites invited and connected", ",.0f"),
    ("online_s", "swarm start → every site online (s)", ".2f"),
    ("start_call_ms", "start call returns (ms)", ".0f"),
    ("notified_p50_ms", "start → notified p50 (ms)", ".0f"),
    ("notified_p99_ms", "start → notified p99 (ms)", ".0f"),
    ("present_s", "start → every site present (s)", ".2f"),
    ("join_cpu_s", "  server CPU meanwhile (s)", ".2f"),
    ("join_gc_ms", "  GC pauses meanwhile (ms)", ".0f"),
    ("join_full_gc_ms", "    of which full collections (ms)", ".0f"),
    ("first_p99_ms", "first grant after the joins p99 (ms)", ".0f"),
    ("floor_p50_ms", "floor grant → all sites p50 (ms)", ".0f"),
    ("ping_p50_ms", "bare hub.broadcast p50 (ms)", ".0f"),
    ("floor_p99_ms", "floor grant → all sites p99 (ms)", ".0f"),
    ("ping_p99_ms", "bare hub.broadcast p99 (ms)", ".0f"),
    ("ratio_p99", "ratio floor / bare, p99", ".2f"),
    ("delivered_min", "fewest sites reached in a round", ",.0f"),
    ("summary_ms", "attendance summary (ms)", ".0f"),
    ("end_ms", "end meeting call (ms)", ".0f"),
    ("csv_ms", "attendance report CSV (ms)", ".0f"),
    ("html_ms", "attendance report HTML (ms)", ".0f"),
    ("rss_joined_mb", "server RSS, every site online (MB)", ".0f"),
    ("rss_present_mb", "server RSS, every site in the meeting (MB)", ".0f"),
    ("rss_trimmed_mb", "  the same after gc.collect + malloc_trim (MB)", ".0f"),
    ("hwm_present_mb", "server peak RSS up to the joins (MB)", ".0f"),
    ("hwm_rounds_mb", "server peak RSS up to the floor rounds (MB)", ".0f"),
    ("rss_peak_mb", "server peak RSS over the run (MB)", ".0f"),
]


def _print(dataset: str, results: list[dict[str, float]], how: str) -> None:
    runs = len(results)
    header = ["what", "median"] + [f"run {i + 1}" for i in range(runs)]
    table = [header]
    for key, label, spec in ROWS:
        values = [r.get(key, float("nan")) for r in results]
        kept = [v for v in values if not math.isnan(v)]
        median = format(statistics.median(kept), spec) if kept else "-"
        table.append(
            [label, median] + [format(v, spec) if not math.isnan(v) else "-" for v in values]
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    print(f"Meetings bench, {dataset}: median of {runs} run(s), product = `diemcau serve`, {how}")
    for i, row in enumerate(table):
        print(
            "  ".join(
                c.ljust(w) if j == 0 else c.rjust(w)
                for j, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if i == 0:
            print("  ".join("-" * w for w in widths))


async def _orchestrate(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix=f"diemcau-bench-meetings-{args.dataset}-"))
    try:
        url, codes, ids, chair_id, everyone = await _prepare(args.dataset, workdir)
        results = []
        for run in range(args.runs):
            r = await _one_run(args, url, codes, ids, chair_id, everyone)
            print(
                f"  run {run + 1}: present {r.get('present_s', float('nan')):.2f} s, floor p99 "
                f"{r['floor_p99_ms']:.0f} ms, bare p99 {r['ping_p99_ms']:.0f} ms, "
                f"peak RSS {r.get('rss_peak_mb', float('nan')):.0f} MB",
                file=sys.stderr,
            )
            results.append(r)
        _print(args.dataset, results, f"sites speak v{args.protocol}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--dataset", default="vn-2025", choices=("vn-2025", "vn-legacy"))
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=20, help="floor grants and pings per run")
    parser.add_argument("--gap", type=float, default=0.3, help="seconds between rounds")
    parser.add_argument("--settle", type=float, default=2.0, help="pause after the first grant")
    parser.add_argument("--join-timeout", type=float, default=60.0, help="seconds")
    parser.add_argument("--swarm-procs", type=int, default=2, help="client processes")
    parser.add_argument(
        "--protocol",
        type=int,
        default=2,
        choices=(1, 2),
        help="the sites' hello version: 2 = heartbeats every 0.25 s, 1 = every 1 s",
    )
    parser.add_argument("--loop", default="uvloop", choices=("uvloop", "asyncio"))
    parser.add_argument("--server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--port", help=argparse.SUPPRESS)
    parser.add_argument("--site-ids", help=argparse.SUPPRESS)
    parser.add_argument("--chair-id", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    from diemcau.presence.tuning import run_with_loop

    if args.server:
        run_with_loop(_server_main(args), args.loop)
    else:
        run_with_loop(_orchestrate(args), "asyncio")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
