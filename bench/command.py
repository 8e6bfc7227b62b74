"""Command-center benchmark: a whole country filing at once, and 90-day aggregation.

Usage::

    python -m bench.command [--days 90] [--db sqlite|URL] [--http]

Loads the ``vn-2025`` directory (34 provinces, 3,321 communes) into a fresh
store, then:

1. every commune site files its COVID-19 report for one day at the same moment
   through the service layer (``ReportService.submit``, the code path the HTTP
   route and the hub message both call): throughput and latency percentiles;
2. with ``--http``, the same through the real HTTP app (uvicorn on loopback
   in this process, one bearer token and one connection per site, the client
   swarm in a child process so its CPU is not counted as the server's);
3. ``--days`` of history for every site written in bulk, then the national
   aggregation over the whole window (every indicator, by province and
   nation), one indicator's time series, and the map values for one day.

Prints one table. Numbers are for the machine it runs on; run it twice.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from diemcau.actors import Actor
from diemcau.command.aggregation import Aggregator
from diemcau.command.models import Report, ReportRevision
from diemcau.command.reports import ReportService
from diemcau.command.rollups import rebuild
from diemcau.command.schemas import IndicatorSchema, builtin_registry
from diemcau.directory.service import load_builtin
from diemcau.store import Database, Site, migrate

CHAIR = Actor.for_staff("bench", "chair")
ZONES = ("green", "yellow", "orange", "red")


def _values(rng: random.Random) -> dict[str, Any]:
    return {
        "new_cases": rng.randint(0, 40),
        "under_treatment": rng.randint(0, 300),
        "recovered": rng.randint(0, 30),
        "deaths": rng.randint(0, 2),
        "vaccine_doses": rng.randint(0, 2000),
        "zone_level": rng.choice(ZONES),
        "distancing_order": rng.random() < 0.3,
    }


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


Row = tuple[str, str, str]


async def _timed(fn: Callable[[], Awaitable[Any]], repeat: int = 3) -> float:
    """Median wall time of `repeat` runs, in seconds."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


async def _file_all(
    reports: ReportService, sites: list[tuple[int, str]], day: date
) -> tuple[float, list[float]]:
    rng = random.Random(7)
    latencies: list[float] = []

    async def one(site_id: int, code: str) -> None:
        t0 = time.perf_counter()
        await reports.submit(
            Actor.for_site(site_id, code), "covid19", _values(rng), period=day, source="site"
        )
        latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(sid, code) for sid, code in sites))
    return time.perf_counter() - t0, latencies


async def _bulk_history(
    db: Database,
    schema: IndicatorSchema,
    sites: list[tuple[int, str, int | None]],
    days: list[date],
) -> float:
    """Write `days` of reports for every site straight into the tables (fast setup)."""
    rng = random.Random(11)
    t0 = time.perf_counter()
    at = datetime(2026, 1, 1, tzinfo=UTC)
    next_id = 1_000_000
    for day in days:
        reps: list[dict[str, Any]] = []
        revs: list[dict[str, Any]] = []
        for site_id, _code, pid in sites:
            v = _values(rng)
            rid = next_id
            next_id += 1
            reps.append(
                {
                    "id": rid,
                    "schema_key": schema.key,
                    "period": day,
                    "site_id": site_id,
                    "province_id": pid,
                    "values": v,
                    "revision": 1,
                    "late": False,
                    "source": "bench",
                    "submitted_by": "bench",
                    "submitted_at": at,
                    "updated_by": "bench",
                    "updated_at": at,
                }
            )
            revs.append(
                {
                    "report_id": rid,
                    "revision": 1,
                    "values": v,
                    "changes": {},
                    "source": "bench",
                    "changed_by": "bench",
                    "changed_at": at,
                    "note": "",
                }
            )
        async with db.session() as s:
            await s.execute(insert(Report), reps)
            await s.execute(insert(ReportRevision), revs)
    await rebuild(db, schema, days[0], days[-1])
    return time.perf_counter() - t0


async def _swarm(port: int, jobs: list[tuple[str, bytes]]) -> list[float]:
    """Every (token, body) POSTed at the same moment, one connection each.

    A bare HTTP/1.1 client on asyncio streams: an HTTP library's own cost
    (httpx spends milliseconds per request, and its pool scans its queue on
    every request) would otherwise be measured as the server's. Latency is
    from the common start, as if every site pressed "send" at once.
    """
    t0 = time.perf_counter()

    async def one(token: str, body: bytes) -> float:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            head = (
                f"POST /api/command/reports HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
            status = await reader.readline()
            if b" 200 " not in status:
                raise RuntimeError(f"HTTP filing failed: {status!r} {await reader.read()!r}")
            await reader.read()
            return time.perf_counter() - t0
        finally:
            writer.close()

    return list(await asyncio.gather(*(one(tok, body) for tok, body in jobs)))


def _swarm_main(path: str, port: int) -> int:
    """Child process: run the swarm from a job file, print latencies as JSON."""
    jobs = [(tok, body.encode()) for tok, body in json.loads(Path(path).read_text())]
    print(json.dumps(asyncio.run(_swarm(port, jobs))))
    return 0


async def _http_filing(
    db: Database, url: str, sites: list[tuple[int, str]], day: date, tmp: Path
) -> tuple[float, list[float]] | str:
    """File through the real HTTP app (uvicorn on loopback, this process) from a
    client swarm in a child process; returns (wall, latencies) or why it could not."""
    try:
        import uvicorn

        from diemcau.accounts.service import SitePrincipal, issue_session_token
        from diemcau.api.app import create_app
        from diemcau.config import Settings
        from diemcau.wiring import build_runtime
    except ImportError as exc:
        return f"skipped ({exc})"
    settings = Settings(database_url=url, secret_key="bench-secret-key-0123456789abcdef", port=0)
    runtime = await build_runtime(settings)
    app = create_app(runtime)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan="on", backlog=4096
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or task.done():
                return "skipped (server did not start)"
            await asyncio.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        async with runtime.db.session() as s:
            found = await s.execute(
                select(
                    Site.id,
                    Site.code,
                    Site.name,
                    Site.province_id,
                    Site.unit_id,
                    Site.kind,
                    Site.credential_version,
                ).where(Site.id.in_([sid for sid, _ in sites]))
            )
            principals = [
                SitePrincipal(
                    r.id, r.code, r.name, r.province_id, r.unit_id, r.kind, r.credential_version
                )
                for r in found.all()
            ]
        rng = random.Random(5)
        jobs = [
            (
                issue_session_token(runtime.keys.token, p, 3600),
                json.dumps(
                    {"schema": "covid19", "period": day.isoformat(), "values": _values(rng)}
                ),
            )
            for p in principals
        ]
        job_file = tmp / "swarm.json"
        job_file.write_text(json.dumps(jobs))
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.command",
            "--swarm",
            str(job_file),
            str(port),
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            return f"failed (swarm exited {proc.returncode})"
        latencies = [float(x) for x in json.loads(out)]
        # Wall time of the swarm itself (not the child's start-up).
        return max(latencies), latencies
    finally:
        server.should_exit = True
        await task
        await runtime.close()


async def _directive_round(db: Database, sites: list[tuple[int, str]]) -> list[Row]:
    """A national directive through a real presence hub (durable per-site delivery),
    then every site acknowledging at once and completing at once."""
    from diemcau.command.alerts import AlertService
    from diemcau.command.directives import DirectiveIn, DirectiveService
    from diemcau.presence.hub import PresenceConfig, PresenceHub

    hub = PresenceHub(db, await db.secret_key(), PresenceConfig(port=0, credential_poll_s=0))
    await hub.start()
    try:
        alerts = AlertService(db, time.time, hub)
        svc = DirectiveService(db, time.time, hub, alerts)
        data = DirectiveIn.parse(
            {
                "title": "Triển khai biện pháp phòng chống dịch",
                "body": "Các xã, phường triển khai ngay và báo cáo kết quả trước 17 giờ.",
                "priority": "urgent",
                "target": {"country": True, "kinds": ["commune"]},
            }
        )
        t0 = time.perf_counter()
        view = await svc.issue_directive(CHAIR, data)
        issue = time.perf_counter() - t0
        rows: list[Row] = [
            (
                "national directive issued (stored, audited, queued per site)",
                f"{view.recipients} sites",
                f"{issue * 1e3:.0f} ms",
            )
        ]
        for label, action in (
            ("acknowledged", lambda a: svc.acknowledge(a, view.id)),
            ("completed", lambda a: svc.complete(a, view.id, "Đã triển khai")),
        ):
            lat: list[float] = []

            async def one(
                site_id: int, code: str, act: Any = action, out: list[float] = lat
            ) -> None:
                t1 = time.perf_counter()
                await act(Actor.for_site(site_id, code))
                out.append(time.perf_counter() - t1)

            t0 = time.perf_counter()
            await asyncio.gather(*(one(sid, code) for sid, code in sites))
            wall = time.perf_counter() - t0
            rows.append(
                (
                    f"  every site {label} at once",
                    f"{len(lat)} in {wall:.2f} s",
                    f"p50 {_pct(lat, 0.5) * 1e3:.0f} / p99 {_pct(lat, 0.99) * 1e3:.0f} ms",
                )
            )
        t0 = time.perf_counter()
        progress = await svc.progress(CHAIR, view.id)
        rows.append(
            (
                "  rates per province",
                f"{len(progress)} provinces",
                f"{(time.perf_counter() - t0) * 1e3:.0f} ms",
            )
        )
        return rows
    finally:
        await hub.stop()


async def run(args: argparse.Namespace) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="diemcau-cmdbench-") as tmp:
        url = args.db if args.db != "sqlite" else f"sqlite+aiosqlite:///{Path(tmp) / 'b.db'}"
        await migrate(url)
        db = Database(url)
        rows: list[Row] = []
        try:
            t0 = time.perf_counter()
            await load_builtin(db, "vn-2025")
            registry = builtin_registry()
            schema = registry.get("covid19")
            async with db.session() as s:
                found = (
                    await s.execute(
                        select(Site.id, Site.code, Site.province_id)
                        .where(Site.kind == "commune")
                        .order_by(Site.id)
                    )
                ).all()
            sites = [(r.id, r.code, r.province_id) for r in found][: args.sites]
            rows.append(
                (
                    "directory vn-2025 loaded",
                    f"{len(sites)} commune sites",
                    f"{time.perf_counter() - t0:.1f} s",
                )
            )
            today = date.today()
            clock_day = datetime(today.year, today.month, today.day, 12, tzinfo=UTC)
            reports = ReportService(db, registry, lambda: clock_day.timestamp())
            wall, lat = await _file_all(reports, [(i, c) for i, c, _ in sites], today)
            rows += [
                (
                    "file a day's report, all sites at once (service)",
                    f"{len(lat)} reports in {wall:.2f} s",
                    f"{len(lat) / wall:,.0f} reports/s",
                ),
                (
                    "  latency p50 / p99 / max",
                    "",
                    f"{_pct(lat, 0.5) * 1e3:.0f} / "
                    f"{_pct(lat, 0.99) * 1e3:.0f} / {max(lat) * 1e3:.0f} ms",
                ),
            ]
            if args.http:
                day2 = today - timedelta(days=1)
                got = await _http_filing(db, url, [(i, c) for i, c, _ in sites], day2, Path(tmp))
                if isinstance(got, str):
                    rows.append(("file a day's report, all sites at once (HTTP)", "", got))
                else:
                    wall, lat = got
                    rows += [
                        (
                            "file a day's report, all sites at once (HTTP)",
                            f"{len(lat)} reports in {wall:.2f} s",
                            f"{len(lat) / wall:,.0f} reports/s",
                        ),
                        (
                            "  latency p50 / p99 / max",
                            "",
                            f"{_pct(lat, 0.5) * 1e3:.0f} / "
                            f"{_pct(lat, 0.99) * 1e3:.0f} / {max(lat) * 1e3:.0f} ms",
                        ),
                    ]
            rows += await _directive_round(db, [(i, c) for i, c, _ in sites])
            if args.days <= 0:
                return rows
            first = today - timedelta(days=args.days + 5)
            days = [first + timedelta(days=i) for i in range(args.days)]
            bulk = await _bulk_history(db, schema, sites, days)
            rows.append(
                (
                    f"history written in bulk + rollups rebuilt ({args.days} days)",
                    f"{len(sites) * len(days):,} reports",
                    f"{bulk:.1f} s",
                )
            )
            agg = Aggregator(db, registry)
            last = days[-1]
            t = await _timed(lambda: agg.aggregate(CHAIR, "covid19", first, last))
            rows.append(
                (
                    f"national + 34 provinces aggregate, {args.days} days, all indicators",
                    "from rollups",
                    f"{t * 1e3:.0f} ms",
                )
            )
            t = await _timed(lambda: agg.aggregate_public(CHAIR, "covid19", first, last))
            rows.append(("  same, as dashboard JSON", "", f"{t * 1e3:.0f} ms"))
            t = await _timed(lambda: agg.series(CHAIR, "covid19", "new_cases", first, last))
            rows.append(
                (f"time series of one indicator, {args.days} days", "", f"{t * 1e3:.0f} ms")
            )
            t = await _timed(lambda: agg.map_values(CHAIR, "covid19", "zone_level", last))
            rows.append(("map values, one day, 3,321 sites", "", f"{t * 1e3:.0f} ms"))
            pid = sites[0][2]
            officer = Actor.for_staff("officer", "province_officer", pid)
            t = await _timed(lambda: agg.aggregate(officer, "covid19", first, last))
            rows.append((f"one province's aggregate, {args.days} days", "", f"{t * 1e3:.0f} ms"))
            t = await _timed(lambda: reports.filing_status(CHAIR, "covid19", today))
            rows.append(
                ("who has filed (late / missing), one day, national", "", f"{t * 1e3:.0f} ms")
            )
        finally:
            await db.dispose()
    return rows


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--swarm"]:
        return _swarm_main(argv[1], int(argv[2]))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--days", type=int, default=90, help="days of history to aggregate")
    parser.add_argument("--db", default="sqlite", help="'sqlite' (temp file) or a database URL")
    parser.add_argument("--http", action="store_true", help="also file through the HTTP app")
    parser.add_argument("--sites", type=int, default=None, help="only the first N sites")
    args = parser.parse_args(argv)
    rows = asyncio.run(run(args))
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    print(f"{'what':<{w0}}  {'size':<{w1}}  result")
    print(f"{'-' * w0}  {'-' * w1}  {'-' * 24}")
    for a, b, c in rows:
        print(f"{a:<{w0}}  {b:<{w1}}  {c}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
