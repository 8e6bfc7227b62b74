"""Meetings bench: a national meeting with every ``vn-2025`` commune site attending.

Run: ``.venv/bin/python bench/meetings.py [--sites N] [--rounds 20]``

In a fresh temporary SQLite store this loads ``vn-2025`` (3,321 communes), gives
every commune site a credential, and runs the control plane (presence hub and
meeting service) in this process. The simulated sites (``diemcau.sim.sites.Swarm``,
the real protocol over ``websockets``) run in a child process, so the server has a
core of its own. Each simulated site answers "meeting.started" with "meeting.join"
over its session and stamps the wall-clock arrival of every meeting message.

Measured:

* ``start → every site notified``: from the chair's start call to the arrival of
  "meeting.started" at each site (invitation resolved, participants stored, the
  stream followed, the announcement broadcast);
* ``start → every site present``: until each site's join was handled and its
  attendance interval stored;
* ``floor grant → all sites``: per grant, from the chair's call to each site's
  arrival of "floor.changed" (persist + audit + broadcast), p50/p99 over all sites
  and rounds, and the median of the per-round last arrival;
* ``bare hub broadcast``: the same message size sent with ``hub.broadcast`` alone,
  in the same run, so the meeting layer's own cost reads as the difference;
* attendance summary and report (CSV, HTML) generation time, median of 3.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

Row = tuple[str, str, str]


def _pct(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


# --- the simulated sites (child process) ------------------------------------------------


async def _swarm_main(url: str, codes_path: Path) -> None:
    from websockets.asyncio.connection import broadcast

    from diemcau.sim.sites import SimOptions, SimSite, Swarm

    codes = [c for c in codes_path.read_text().splitlines() if c]
    arrivals: dict[str, list[float]] = defaultdict(list)
    join = json.dumps({"type": "req", "id": "join", "kind": "meeting.join", "body": {}})

    def on_message(site: SimSite, msg: dict[str, Any]) -> None:
        now = time.time()
        kind = msg.get("kind")
        body = msg.get("body") or {}
        if kind == "meeting.started":
            arrivals["started"].append(now)
            if site.ws is not None:
                broadcast([site.ws], join)
        elif kind == "floor.changed":
            arrivals[f"floor:{body.get('version')}"].append(now)
        elif kind == "bench.ping":
            arrivals[f"ping:{body.get('n')}"].append(now)

    options = SimOptions(summary_s=0, connect_concurrency=256)
    swarm = Swarm(url, codes, options, out=None, on_message=on_message)
    stop = asyncio.Event()

    async def wait_for_stop() -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.readline)
        stop.set()

    waiter = asyncio.create_task(wait_for_stop())
    await swarm.run(stop=stop)
    waiter.cancel()
    print(json.dumps({"arrivals": arrivals, "counters": dict(swarm.counters)}), flush=True)


# --- the server side (this process) -----------------------------------------------------


async def _credentials(db: Any, key: bytes, limit: int) -> tuple[list[int], list[str]]:
    """Give commune sites a fresh credential; return their ids and join codes."""
    from sqlalchemy import select, update

    from diemcau.accounts.service import join_code
    from diemcau.security import new_site_secret, site_secret_digest
    from diemcau.store.models import Site

    async with db.session() as s:
        rows = (
            await s.execute(
                select(Site.id, Site.code).where(Site.kind == "commune").order_by(Site.code)
            )
        ).all()
        rows = rows[:limit] if limit else rows
        ids: list[int] = []
        codes: list[str] = []
        for sid, code in rows:
            secret = new_site_secret()
            await s.execute(
                update(Site)
                .where(Site.id == sid)
                .values(secret_digest=site_secret_digest(key, secret), credential_version=1)
            )
            ids.append(sid)
            codes.append(join_code(code, secret))
    return ids, codes


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


async def run(args: argparse.Namespace) -> list[Row]:
    from diemcau.actors import Actor
    from diemcau.directory.service import load_builtin
    from diemcau.meetings import InviteSpec, MeetingService
    from diemcau.meetings.publisher import stream_of
    from diemcau.presence.hub import PresenceConfig, PresenceHub
    from diemcau.store import Database, migrate
    from diemcau.store.models import StaffUser

    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="diemcau-bench-") as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        await migrate(url)
        db = Database(url)
        key = await db.secret_key()
        await load_builtin(db, "vn-2025")
        site_ids, codes = await _credentials(db, key, args.sites)
        n = len(site_ids)
        codes_path = Path(tmp) / "codes.txt"
        codes_path.write_text("\n".join(codes))
        async with db.session() as s:
            user = StaffUser(username="chair", display_name="", password_hash="x", role="chair")
            s.add(user)
            await s.flush()
            chair = Actor.for_staff("chair", "chair", user_id=user.id)

        hub = PresenceHub(db, key, PresenceConfig(port=0, credential_poll_s=0))
        svc = MeetingService(db, hub, reminder_poll_s=0)
        svc.register()
        await hub.start()
        await svc.start()
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--swarm",
            hub.url,
            str(codes_path),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            online_s = await _until(lambda: len(hub.online_site_ids()) >= n, 180)
            rows.append(("sites online (simulator)", f"{online_s:.2f} s", f"{n:,} sites"))

            invite = (
                InviteSpec(everyone=True, kinds=("commune",))
                if not args.sites
                else InviteSpec(site_ids=tuple(site_ids))
            )
            m = await svc.lifecycle.create_meeting(
                chair, title="Họp trực tuyến toàn quốc", invite=invite
            )
            rows.append(("invited (resolved at start)", f"{m.invited_count:,}", "sites"))
            t_start = time.time()
            await svc.lifecycle.start_meeting(chair, m.id)
            start_call = time.time() - t_start

            # Polled every 25 ms: the check walks every site, and it runs in the server's loop.
            def present() -> int:
                return sum(svc.attendance.is_present(m.id, sid) for sid in site_ids)

            try:
                present_s = await _until(lambda: present() >= n, args.join_timeout, every=0.025)
                present_note = "joins stored"
            except TimeoutError:
                present_s = float("nan")
                present_note = (
                    f"only {present():,}/{n:,} present after {args.join_timeout:.0f} s"
                    f" ({len(hub.online_site_ids()):,} online)"
                )
            rows.append(("start call returns", _ms(start_call), "resolve, store, follow, announce"))
            rows.append(("start → every site present", f"{present_s:.2f} s", present_note))

            floor_t0: dict[int, float] = {}
            failures: list[str] = []
            # The first decision right after the mass join competes with the tail of the
            # join replies; it is reported on its own, then the steady rounds follow.
            t_first = time.time()
            first = await svc.floor.grant(chair, m.id, [site_ids[0]])
            await asyncio.sleep(args.settle)
            for i in range(args.rounds):
                # A present site (one may have dropped meanwhile on a loaded machine).
                start_at = (i * 97) % n
                target = next(
                    (
                        sid
                        for sid in site_ids[start_at:] + site_ids[:start_at]
                        if svc.attendance.is_present(m.id, sid)
                    ),
                    None,
                )
                if target is None:
                    failures.append(f"grant {i}: no site present")
                    continue
                t0 = time.time()
                try:
                    decision = await svc.floor.grant(chair, m.id, [target])
                except Exception as exc:  # reported, not fatal: the other rounds still count
                    failures.append(f"grant {i}: {type(exc).__name__}")
                    continue
                floor_t0[decision.version] = t0
                await asyncio.sleep(args.gap)
            floor_body = len(json.dumps(decision.as_dict())) if floor_t0 else 300
            ping_t0: dict[int, float] = {}
            for i in range(args.rounds):
                t0 = time.time()
                try:
                    await hub.broadcast(
                        stream_of(m.id),
                        "bench.ping",
                        {"n": i, "pad": "x" * max(0, floor_body - 40)},
                    )
                except Exception as exc:
                    failures.append(f"ping {i}: {type(exc).__name__}")
                    continue
                ping_t0[i] = t0
                await asyncio.sleep(args.gap)
            await asyncio.sleep(2.0)  # stragglers

            summary_s = await _median_time(lambda: svc.roll_call.summary(m.id))
            t_end = time.perf_counter()
            await svc.lifecycle.end_meeting(chair, m.id)
            end_s = time.perf_counter() - t_end
            csv_s = await _median_time(lambda: svc.roll_call.report_csv(m.id))
            html_s = await _median_time(lambda: svc.roll_call.report_html(m.id))
            csv_len = len(await svc.roll_call.report_csv(m.id))
        finally:
            assert child.stdin is not None
            child.stdin.write(b"stop\n")
            await child.stdin.drain()
            out, _ = await asyncio.wait_for(child.communicate(), 60)
            await svc.stop()
            await hub.stop()
            await db.dispose()

    data = json.loads(out.decode().strip().splitlines()[-1])
    arrivals: dict[str, list[float]] = data["arrivals"]
    started = [t - t_start for t in arrivals.get("started", [])]
    rows.insert(
        3,
        (
            "start → every site notified",
            f"p50 {_ms(_pct(started, 0.5))} · p99 {_ms(_pct(started, 0.99))}",
            f"last {_ms(max(started) if started else float('nan'))}; {len(started):,}/{n:,} got it",
        ),
    )

    verbose = args.verbose

    def spread(prefix: str, t0s: dict[int, float]) -> tuple[str, str]:
        pooled: list[float] = []
        lasts: list[float] = []
        counts: list[int] = []
        for k, t0 in t0s.items():
            got = [t - t0 for t in arrivals.get(f"{prefix}:{k}", [])]
            pooled += got
            counts.append(len(got))
            if got:
                lasts.append(max(got))
        if verbose:
            print(prefix, "per-round last (ms):", [round(x * 1000) for x in lasts], file=sys.stderr)
        return (
            f"p50 {_ms(_pct(pooled, 0.5))} · p99 {_ms(_pct(pooled, 0.99))}",
            f"last (median of rounds) {_ms(statistics.median(lasts) if lasts else float('nan'))};"
            f" min delivered {min(counts) if counts else 0:,}/{n:,}",
        )

    first_got = [t - t_first for t in arrivals.get(f"floor:{first.version}", [])]
    rows.append(
        (
            "first grant right after the joins",
            f"p50 {_ms(_pct(first_got, 0.5))} · p99 {_ms(_pct(first_got, 0.99))}",
            f"last {_ms(max(first_got) if first_got else float('nan'))};"
            f" {len(first_got):,}/{n:,} got it",
        )
    )
    fv, fn = spread("floor", floor_t0)
    pv, pn = spread("ping", ping_t0)
    rows.append((f"floor grant → all sites ({args.rounds} rounds)", fv, fn))
    rows.append((f"bare hub.broadcast, same size ({args.rounds})", pv, pn))
    rows.append(("attendance summary (live)", _ms(summary_s), "per province + total"))
    rows.append(("end meeting call", _ms(end_s), "close intervals, hands, floor"))
    rows.append(("attendance report CSV", _ms(csv_s), f"{csv_len / 1024:,.0f} KiB"))
    rows.append(("attendance report HTML", _ms(html_s), "print-ready"))
    counters: dict[str, int] = data.get("counters", {})
    rows.append(
        (
            "simulator reconnects",
            f"{counters.get('reconnects', 0):,}",
            "sessions dropped and resumed during the run (a loaded machine shows here)",
        )
    )
    if failures:
        rows.append(("failed rounds", str(len(failures)), "; ".join(failures[:4])))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows.append(("server process peak RSS", f"{rss:,.0f} MB", "hub + meetings + store"))
    return rows


def _print(rows: list[Row]) -> None:
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    print(f"{'what'.ljust(w0)}  {'figure'.ljust(w1)}  note")
    print(f"{'-' * w0}  {'-' * w1}  ----")
    for a, b, c in rows:
        print(f"{a.ljust(w0)}  {b.ljust(w1)}  {c}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--sites", type=int, default=0, help="limit to N communes (0: all)")
    parser.add_argument("--rounds", type=int, default=20, help="floor grants and pings")
    parser.add_argument("--gap", type=float, default=0.3, help="seconds between rounds")
    parser.add_argument("--settle", type=float, default=2.0, help="pause after the first grant")
    parser.add_argument("--join-timeout", type=float, default=60.0, help="seconds")
    parser.add_argument("--verbose", action="store_true", help="per-round figures on stderr")
    parser.add_argument("--swarm", nargs=2, metavar=("URL", "CODES"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.swarm:
        asyncio.run(_swarm_main(args.swarm[0], Path(args.swarm[1])))
        return 0
    _print(asyncio.run(run(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
