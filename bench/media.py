"""Media-plane benchmark: real Janus processes (central + relays) and aiortc bots.

Run (as root; it enters a private network namespace)::

    .venv/bin/python bench/media.py [--runs 3] [--viewers 50,100,150] [--seconds 6]
        [--parts latency,capacity,failover,province,fanout]

Prints one table per part, every figure the median over ``--runs`` and, where
there is one, its reference measured in the same run beside it. The
``province`` part is bench/media_province.py (a relay where every site
publishes and plays the program, diemcau's Janus settings beside Janus's
defaults), the ``fanout`` part bench/media_fanout.py (what leaves a floor
speaker's relay with 34 and 63 relays, central forwarding beside the speaker's
relay sending each copy). The other parts, on central + 2 relays
(p50/p95 inside a run):

1. glass-to-glass chair -> site through central + relay, beside the same
   viewer directly on central (frame timestamps drawn as pixel blocks);
2. spot-check: grant + subscribe on the site's relay -> first decoded frame
   (and what a site's grant costs once its rooms exist: signing only);
3. floor handover: ``set_floor`` -> first frame and first audio of the
   speaker at a site on another relay (the site subscribes when told), with
   central forwarding the floor (now) beside the speaker's relay sending it
   to the other relay itself (before);
4. capacity: N non-decoding receivers (`LightReceiver`: RTP packets counted,
   never decoded, in worker processes) of the chair program on one relay,
   and the same N directly on central; loss from RTP sequence numbers and
   Janus CPU per viewer from /proc/<pid>/stat. The bots share the 2 cores
   with Janus, so "largest N at < 1 % loss" is a lower bound for Janus; the
   kernel's per-socket drop counters say where packets were lost (a bot
   socket whose process fell behind, or a Janus socket);
5. failover: SIGKILL the site's relay; time until the registry marks it
   down and moves the site, and until the site (with a new grant) sees the
   program again through the other relay.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import queue
import sys
import time
from collections.abc import Sequence
from typing import Any

from diemcau.media.isolation import enter_isolated_netns
from media_fanout import run_fanout
from media_kit import drops_between, med, print_rows, udp_socket_drops
from media_province import run_province


def pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def _receiver_worker(
    target: tuple[str, int, str, str, str | None],
    feed: int,
    count: int,
    seconds: float,
    out: Any,
) -> None:
    """A worker process running ``count`` light receivers; sends back (packets, expected)."""
    from diemcau.sim.janus_bots import JanusTarget
    from diemcau.sim.rtp_counter import LightReceiver

    async def run() -> tuple[int, int, int, int]:
        t = JanusTarget(*target)
        bots = [LightReceiver(t, feed) for _ in range(count)]
        started = 0
        try:
            for chunk in range(0, count, 10):
                res = await asyncio.gather(
                    *(b.start(15.0) for b in bots[chunk : chunk + 10]), return_exceptions=True
                )
                started += sum(1 for r in res if not isinstance(r, BaseException))
            await asyncio.sleep(1.5)  # settle: first keyframes, jitter
            base = [(b.counter.packets, b.counter.expected()) for b in bots]
            out.put(("ready", started))
            await asyncio.sleep(seconds)
            got = sum(b.counter.packets - p for b, (p, _) in zip(bots, base, strict=True))
            exp = sum(b.counter.expected() - e for b, (_, e) in zip(bots, base, strict=True))
            dead = sum(1 for b in bots if b.counter.packets == 0)
            return got, exp, started, dead
        finally:
            await asyncio.gather(*(b.stop() for b in bots), return_exceptions=True)

    out.put(("done", asyncio.run(run())))


async def capacity_step(
    proc: Any, target: tuple[str, int, str, str, str | None], feed: int, n: int, seconds: float
) -> dict[str, float]:
    """N light receivers over 2 worker processes; loss and Janus CPU per viewer."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    workers = 2
    sizes = [n // workers + (1 if i < n % workers else 0) for i in range(workers)]
    ps = [
        ctx.Process(target=_receiver_worker, args=(target, feed, k, seconds, q), daemon=True)
        for k in sizes
        if k
    ]
    idle_cpu0, idle_t0 = proc.cpu_seconds(), time.monotonic()
    await asyncio.sleep(1.0)
    idle = (proc.cpu_seconds() - idle_cpu0) / (time.monotonic() - idle_t0)
    for p in ps:
        p.start()
    ready = 0
    started = 0
    setup_limit = 60.0 + n * 0.5
    try:
        while ready < len(ps):
            kind, val = await asyncio.to_thread(q.get, True, setup_limit)
            if kind == "ready":
                ready += 1
                started += val
    except queue.Empty:
        # The bots could not even set up N subscriptions in time: the bot
        # machine is the limit at this N, not Janus.
        for p in ps:
            p.terminate()
            await asyncio.to_thread(p.join, 10)
        return {
            "n": n,
            "started": started,
            "dead": n - started,
            "loss": 1.0,
            "cpu_pct_per_viewer": float("nan"),
            "janus_drops": 0,
            "bot_drops": 0,
            "expected": 0,
        }
    ports = range(proc.rtp_port_range[0], proc.rtp_port_range[1] + 1)
    cpu0, t0, drops0 = proc.cpu_seconds(), time.monotonic(), udp_socket_drops()
    await asyncio.sleep(seconds * 0.9)
    busy = (proc.cpu_seconds() - cpu0) / (time.monotonic() - t0)
    janus_drops, bot_drops = drops_between(drops0, udp_socket_drops(), ports)
    got = exp = dead = 0
    for _ in ps:
        kind, val = await asyncio.to_thread(q.get, True, setup_limit)
        got, exp, dead = got + val[0], exp + val[1], dead + val[3]
    for p in ps:
        await asyncio.to_thread(p.join, 30)
    loss = max(0.0, 1 - got / exp) if exp else 1.0
    return {
        "n": n,
        "started": started,
        "dead": dead,
        "loss": loss,
        "cpu_pct_per_viewer": 100 * max(0.0, busy - idle) / max(started, 1),
        "janus_drops": janus_drops,
        "bot_drops": bot_drops,
        "expected": exp,
    }


async def main(args: argparse.Namespace) -> int:
    from diemcau.media.cluster import LocalCluster
    from diemcau.media.orchestrator import MediaOrchestrator
    from diemcau.media.topology import SiteRef
    from diemcau.sim.janus_bots import JanusTarget, PublisherBot, ViewerBot

    rows: list[tuple[str, str, str]] = []
    g2g_cascade: list[tuple[float, float]] = []
    g2g_direct: list[tuple[float, float]] = []
    spot: list[tuple[float, float]] = []
    hand_v: dict[str, list[tuple[float, float]]] = {"central": [], "source": []}
    hand_a: dict[str, list[tuple[float, float]]] = {"central": [], "source": []}
    grant_cost: list[tuple[float, float]] = []
    cap: dict[str, list[dict[str, float]]] = {"relay": [], "central": []}
    failover: list[tuple[float, float]] = []
    viewers = [int(v) for v in args.viewers.split(",") if v]
    parts = set(args.parts.split(","))

    for run in range(args.runs if parts & {"latency", "capacity", "failover"} else 0):
        print(f"run {run + 1}/{args.runs}", file=sys.stderr)
        cluster = LocalCluster(relays=[("r1", ("01",), 100), ("r2", ("02",), 100)])
        await cluster.start()
        orch = MediaOrchestrator(
            cluster.nodes(),
            [SiteRef("A", "01"), SiteRef("B", "02")],
            sync_interval=0.2,
        )
        bots: list[PublisherBot | ViewerBot] = []

        async def viewer(
            t: JanusTarget, feed: int, bots: list[PublisherBot | ViewerBot] = bots
        ) -> ViewerBot:
            v = ViewerBot(t, feed)
            bots.append(v)
            await v.start()
            return v

        try:
            await orch.start()
            cg = await orch.start_program("bench")
            chair_feed = cg["publish"]["feed_id"]
            chair_t = JanusTarget.publish_of(cg)
            chair = PublisherBot(chair_t, chair_feed, "CHAIR", bitrate=500_000)
            bots.append(chair)
            await chair.start()
            ga, gb = await orch.site_media_grant("A"), await orch.site_media_grant("B")
            # A grant once its rooms exist: signed here, no request to Janus.
            costs: list[float] = []
            for _ in range(500):
                t0 = time.perf_counter()
                await orch.site_media_grant("A")
                costs.append(time.perf_counter() - t0)
            grant_cost.append((pct(costs, 0.5), pct(costs, 0.95)))
            ta_prog = JanusTarget.program_of(ga)
            tb_prog = JanusTarget.program_of(gb)
            while not any(lk.target_node == "r2" for lk in orch.cascade.links()):
                await orch.sync()
                await asyncio.sleep(0.05)

            if "latency" in parts:
                # 1. glass-to-glass, cascade vs direct, side by side
                vc = await viewer(tb_prog, chair_feed)
                vd = await viewer(chair_t, chair_feed)
                await vc.wait_frames(10, 5)
                await vd.wait_frames(10, 5)
                vc.stats.latencies_ms.clear()
                vd.stats.latencies_ms.clear()
                await asyncio.sleep(args.seconds)
                for dst, v in ((g2g_cascade, vc), (g2g_direct, vd)):
                    lat = [float(x) for x in v.stats.latencies_ms]
                    dst.append((pct(lat, 0.5), pct(lat, 0.95)))
                await vc.stop()
                await vd.stop()

                # site A publishes on relay 1
                site_a = PublisherBot(
                    JanusTarget.publish_of(ga),
                    ga["publish"]["feed_id"],
                    "SITE-A",
                )
                bots.append(site_a)
                await site_a.start()

                # 2. spot-check: grant -> first frame
                times: list[float] = []
                for _ in range(args.samples):
                    t0 = time.monotonic()
                    sg = await orch.spot_check_grant("A")
                    v = await viewer(JanusTarget.watch_of(sg), sg["subscribe"]["feed_id"])
                    times.append(await v.wait_frames(1, 5) - t0)
                    await v.stop()
                spot.append((pct(times, 0.5), pct(times, 0.95)))

                # 3. floor handover to a site on the other relay, both fan-out ways
                for way in ("central", "source"):
                    orch.floor_fanout = way  # type: ignore[assignment]
                    tv: list[float] = []
                    ta: list[float] = []
                    for _ in range(args.samples):
                        await orch.set_floor("bench", [])
                        t0 = time.monotonic()
                        granted = await orch.set_floor("bench", ["A"])
                        feed = granted["feeds"][-1]["feed_id"]
                        v = await viewer(tb_prog, feed)
                        tv.append(await v.wait_frames(1, 5, label="SITE-A") - t0)
                        ta.append(await v.wait_audio(5) - t0)
                        await v.stop()
                    await orch.set_floor("bench", [])
                    hand_v[way].append((pct(tv, 0.5), pct(tv, 0.95)))
                    hand_a[way].append((pct(ta, 0.5), pct(ta, 0.95)))
                orch.floor_fanout = "central"
                await site_a.stop()

            # 4. capacity: light receivers on relay 1 vs directly on central
            if "capacity" in parts and (run == 0 or args.capacity_every_run):
                tgt_relay = (
                    ta_prog.ws_url,
                    ta_prog.room,
                    ga["token"],
                    ga["room_token"],
                    ta_prog.pin,
                )
                tgt_central = (chair_t.ws_url, chair_t.room, cg["token"], cg["room_token"], None)
                for where, proc, tgt in (
                    ("relay", cluster.processes["r1"], tgt_relay),
                    ("central", cluster.central, tgt_central),
                ):
                    for n in viewers:
                        print(f"  capacity {where} n={n}", file=sys.stderr)
                        step = await capacity_step(proc, tgt, chair_feed, n, args.seconds)
                        cap[where].append(step)
                        if step["loss"] >= 0.01:
                            break

            if "failover" in parts:
                # 5. relay failure (SIGKILL): site A's program back via the other relay
                va = await viewer(ta_prog, chair_feed)
                await va.wait_frames(5, 5)
                t0 = time.monotonic()
                cluster.processes["r1"].kill()
                while orch.plan.assignment.get("A") != "r2":
                    if time.monotonic() - t0 > 20:
                        raise RuntimeError("relay failure not detected in 20 s")
                    await asyncio.sleep(0.02)
                detected = time.monotonic() - t0
                g = await orch.site_media_grant("A")
                t_new = JanusTarget.program_of(g)
                v2 = await viewer(t_new, chair_feed)
                failover.append((detected, await v2.wait_frames(1, 5) - t0))
        finally:
            for b in reversed(bots):
                await b.stop()
            await orch.close()
            await cluster.stop()

    def fmt(pairs: list[tuple[float, float]], scale: float, unit: str) -> str:
        p50 = med([p[0] for p in pairs]) * scale
        p95 = med([p[1] for p in pairs]) * scale
        return f"p50 {p50:.0f} {unit}, p95 {p95:.0f} {unit}"

    if "latency" in parts:
        rows.append(
            (
                "glass-to-glass chair->site, central+relay",
                fmt(g2g_cascade, 1, "ms"),
                "<=300 ms (goal 60)",
            )
        )
        rows.append(
            ("glass-to-glass chair->viewer on central", fmt(g2g_direct, 1, "ms"), "reference")
        )
        rows.append(
            ("site grant, rooms made (no Janus request)", fmt(grant_cost, 1e6, "us"), "thousands/s")
        )
        rows.append(
            ("spot-check grant -> first frame", fmt(spot, 1000, "ms"), "<=1500 ms (goal 300)")
        )
        rows.append(
            (
                "floor handover -> first frame (other relay, via central)",
                fmt(hand_v["central"], 1000, "ms"),
                f"<=1500 (goal 300); speaker's relay direct: {fmt(hand_v['source'], 1000, 'ms')}",
            )
        )
        rows.append(
            (
                "floor handover -> first audio (other relay, via central)",
                fmt(hand_a["central"], 1000, "ms"),
                f"<=1500 (goal 300); speaker's relay direct: {fmt(hand_a['source'], 1000, 'ms')}",
            )
        )
    if "failover" in parts:
        rows.append(
            (
                "relay SIGKILL -> marked down, sites moved",
                f"{med([f[0] for f in failover]):.1f} s",
                "down within 5 s",
            )
        )
        rows.append(
            (
                "relay SIGKILL -> site's first program frame via other relay",
                f"{med([f[1] for f in failover]):.1f} s",
                "<=10 s",
            )
        )
    for where in ("relay", "central"):
        ok = [s for s in cap[where] if s["loss"] < 0.01 and s["dead"] == 0]
        best = max(ok, key=lambda s: s["n"]) if ok else None
        for s in cap[where]:
            rows.append(
                (
                    f"{where}: {int(s['n'])} light viewers ({int(s['started'])} up)",
                    f"loss {100 * s['loss']:.2f} %, dropped at bot sockets "
                    f"{int(s['bot_drops'])}, at Janus {int(s['janus_drops'])}; "
                    f"Janus {s['cpu_pct_per_viewer']:.2f} % core/viewer",
                    "<=0.5 % core (goal 0.2)",
                )
            )
        rows.append(
            (
                f"{where}: most viewers at <1 % loss (tried {viewers})",
                str(int(best["n"])) if best else "none",
                "bots share the 2 cores",
            )
        )
    tables: list[tuple[str, tuple[str, str, str], list[tuple[str, str, str]]]] = []
    if rows:
        tables.append(
            (
                f"media bench: {args.runs} runs, median of per-run figures, {os.cpu_count()} cores",
                ("what", "measured", "target / reference"),
                rows,
            )
        )
    if "province" in parts:
        sites = [int(x) for x in args.sites.split(",") if x]
        tables.append(
            (
                f"province relay: {args.runs} runs, medians"
                " (% core per site = Janus CPU above idle / N)",
                ("what", "diemcau's Janus settings (now)", "Janus defaults (before)"),
                await run_province(args.runs, sites, args.province_viewers, 8.0),
            )
        )
    if "fanout" in parts:
        counts = [int(x) for x in args.relays.split(",") if x]
        tables.append(
            (
                f"floor fan-out: {args.runs} runs, medians",
                ("what", "central forwards (now)", "speaker relay sends each (before)"),
                await run_fanout(args.runs, counts, 5.0, args.samples),
            )
        )
    for title, head, table in tables:
        print_rows(title, head, table)
        print()
    return 0


def cli() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--samples", type=int, default=5, help="spot-checks and handovers per run")
    p.add_argument("--seconds", type=float, default=6.0, help="measuring window")
    p.add_argument("--viewers", default="50,100,150", help="capacity steps")
    p.add_argument("--capacity-every-run", action="store_true")
    p.add_argument(
        "--parts",
        default="latency,capacity,failover,province,fanout",
        help="which parts to run (comma list)",
    )
    p.add_argument("--sites", default="100,200", help="province: two-way site counts")
    p.add_argument("--province-viewers", type=int, default=200, help="province: viewers step")
    p.add_argument("--relays", default="34,63", help="fanout: relay counts declared")
    args = p.parse_args()
    if os.geteuid() == 0:
        enter_isolated_netns()
    else:
        print("note: not root, running without the isolated namespace", file=sys.stderr)
    return asyncio.run(main(args))


if __name__ == "__main__":
    sys.exit(cli())
