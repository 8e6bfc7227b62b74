"""A province on one relay: every site publishes and plays the program.

Run (as root; it enters a private network namespace)::

    .venv/bin/python bench/media_province.py [--runs 3] [--sites 100,200] [--seconds 8]

(bench/media.py runs it too, as its ``province`` part.)

One relay, fed the chair's program by central (a pre-encoded ~500 kbps VP8 +
Opus clip, `LightPublisher`), serves N sites. Each site, like a browser,
publishes its uplink (the low simulcast layer: ~160 kbps VP8 at 30 fps + Opus)
into its uplink room and plays the program from the program room. The sites
are light bots spread over worker processes (`diemcau.sim.swarm`): their RTP
is a pre-encoded clip sent over the SRTP session aiortc negotiated, and
received RTP is counted off the socket, never decrypted or decoded (a decoding
aiortc viewer costs 3-4 % of a core; these cost ~0.1 %).

Measured for the relay with diemcau's Janus settings (`NODE_TUNING`) beside
the same relay with Janus's defaults, in the same run: Janus's own CPU time
(``/proc/<pid>/stat``) over a fixed window minus the relay's idle CPU just
before, per site; the program's loss at the sites (RTP sequence numbers); and
where the kernel dropped datagrams (Janus's sockets or the bots'). Also a
receive-only step (program viewers without uplinks) for the per-viewer cost.
The bots share the machine with Janus: bot-socket drops mean the bots, not
the relay, fell behind.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import queue
import sys
import time
from dataclasses import replace
from typing import Any

from diemcau.media.isolation import enter_isolated_netns
from media_kit import drops_between, med, print_rows, udp_socket_drops

WORKERS = 4


def cpu_of(pid: int | None) -> float:
    """User + system CPU seconds of a process so far (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def step(
    orch: Any,
    proc: Any,
    codes: list[str],
    program: tuple[int, float],
    two_way: bool,
    seconds: float,
) -> dict[str, float]:
    """N sites (two-way or receive-only) over worker processes; CPU, loss, drops.

    ``program`` is the program feed and its packet rate. Besides Janus's CPU per
    site as measured, the CPU per packet Janus handled (packets in from the
    publishers, packets out to the receivers: received, or dropped at their
    sockets) gives the cost of a site at the clips' full rates, which stays
    right when the bots, sharing the machine, fall behind.
    """
    program_feed, program_rate = program
    from diemcau.sim.swarm import run_site_worker, site_spec

    specs = [
        site_spec(c, await orch.site_media_grant(c), program_feed, publish=two_way, receive=True)
        for c in codes
    ]
    ctx = mp.get_context("spawn")
    out, go = ctx.Queue(), ctx.Event()
    procs = [
        ctx.Process(target=run_site_worker, args=(specs[i::WORKERS], seconds, out, go), daemon=True)
        for i in range(WORKERS)
        if specs[i::WORKERS]
    ]
    c0, t0 = proc.cpu_seconds(), time.monotonic()
    await asyncio.sleep(2.0)
    idle = (proc.cpu_seconds() - c0) / (time.monotonic() - t0)
    for p in procs:
        p.start()
    limit = 120.0 + 0.5 * len(codes)
    results = []
    busy = bots = janus_drops = bot_drops = float("nan")  # stays so if the bots cannot even start
    try:
        for _ in procs:
            await asyncio.to_thread(out.get, True, limit)
        go.set()
        ports = range(proc.rtp_port_range[0], proc.rtp_port_range[1] + 1)
        d0, c0, t0 = udp_socket_drops(), proc.cpu_seconds(), time.monotonic()
        b0 = sum(cpu_of(p.pid) for p in procs)
        await asyncio.sleep(seconds * 0.9)
        busy = (proc.cpu_seconds() - c0) / (time.monotonic() - t0)
        bots = (sum(cpu_of(p.pid) for p in procs) - b0) / (time.monotonic() - t0)
        drops = drops_between(d0, udp_socket_drops(), ports)
        janus_drops, bot_drops = float(drops[0]), float(drops[1])
        for _ in procs:
            results.append((await asyncio.to_thread(out.get, True, limit))[1])
    except queue.Empty:
        print(f"    the bots did not start {len(codes)} sites in time", file=sys.stderr)
    finally:
        for p in procs:
            await asyncio.to_thread(p.join, 60)
            if p.is_alive():
                p.kill()
    got = sum(r.received for r in results)
    exp = sum(r.expected for r in results)
    n = len(codes)
    up = sum(r.sent_packets for r in results) / seconds
    down = got / seconds + bot_drops / (0.9 * seconds)
    us_per_packet = 1e6 * max(0.0, busy - idle) / max(1.0, up + down)
    clip_rate = max([r.clip_rate for r in results] or [0.0]) if two_way else 0.0
    return {
        "n": n,
        "idle": 100 * idle,
        "busy": 100 * busy,
        "bots_cpu": 100 * bots,
        "per_site": 100 * max(0.0, busy - idle) / n,
        "us_per_packet": us_per_packet,
        "per_site_full": us_per_packet * (clip_rate + program_rate) / 1e4,
        "behind": float(up < 0.97 * n * clip_rate or bot_drops > 0.01 * (up + down) * seconds),
        "loss": 100 * max(0.0, 1 - got / exp) if exp else float("nan"),
        "janus_drops": janus_drops,
        "bot_drops": bot_drops,
        "silent": sum(r.silent_receivers for r in results),
        "up_pps": up,
        "down_pps": down,
    }


async def measure_tuning(
    tuning: Any, sites: list[int], viewers: int, seconds: float
) -> dict[str, dict[str, float]]:
    """One relay with ``tuning``: a receive-only step, then each two-way step."""
    from diemcau.media.cluster import LocalCluster
    from diemcau.media.orchestrator import MediaOrchestrator
    from diemcau.media.topology import SiteRef
    from diemcau.sim.janus_bots import JanusTarget
    from diemcau.sim.light_publisher import LightPublisher, PreEncodedClip

    n = max([*sites, viewers])
    refs = [SiteRef(f"S{i:03d}", "01") for i in range(n)]
    cluster = LocalCluster(relays=[("r1", ("01",), n)])
    cluster.processes["r1"] = replace(cluster.processes["r1"], tuning=tuning)
    await cluster.start()
    orch = MediaOrchestrator(cluster.nodes(), refs, sync_interval=0.5)
    chair = None
    out: dict[str, dict[str, float]] = {}
    try:
        await orch.start()
        cg = await orch.start_program("province")
        clip = PreEncodedClip.make("CHAIR", video_bps=450_000, size=(640, 360))
        target = JanusTarget.publish_of(cg)
        chair = LightPublisher(target, cg["publish"]["feed_id"], "CHAIR", clip)
        await chair.start()
        while not any(lk.target_node == "r1" for lk in orch.cascade.links()):
            await asyncio.sleep(0.05)
        relay, feed = cluster.processes["r1"], (chair.feed_id, clip.packet_rate)
        codes = [r.code for r in refs]
        print(f"    {viewers} program viewers", file=sys.stderr)
        out["viewers"] = await step(orch, relay, codes[:viewers], feed, False, seconds)
        for k in sites:
            print(f"    {k} two-way sites", file=sys.stderr)
            out[f"sites{k}"] = await step(orch, relay, codes[:k], feed, True, seconds)
    finally:
        if chair is not None:
            await chair.stop()
        await orch.close()
        await cluster.stop()
    return out


async def run_province(
    runs: int, sites: list[int], viewers: int, seconds: float
) -> list[tuple[str, str, str]]:
    """Rows (what, diemcau's settings, Janus defaults) as medians over ``runs``."""
    from diemcau.media.janus_config import NODE_TUNING, JanusTuning

    ways = {"tuned": NODE_TUNING, "default": JanusTuning()}
    results: dict[str, list[dict[str, dict[str, float]]]] = {w: [] for w in ways}
    for run in range(runs):
        print(f"province run {run + 1}/{runs}", file=sys.stderr)
        for way, tuning in ways.items():
            print(f"  Janus {way}: {tuning}", file=sys.stderr)
            results[way].append(await measure_tuning(tuning, sites, viewers, seconds))

    def m(way: str, key: str, field: str) -> float:
        return med([r[key][field] for r in results[way]])

    def cell(way: str, key: str) -> str:
        behind = sum(r[key]["behind"] for r in results[way])
        return (
            f"{m(way, key, 'per_site'):.2f} % (full rate {m(way, key, 'per_site_full'):.2f} %;"
            f" Janus {m(way, key, 'busy'):.0f} % of a core), loss {m(way, key, 'loss'):.2f} %,"
            f" drops Janus {m(way, key, 'janus_drops'):.0f} / bots {m(way, key, 'bot_drops'):.0f}"
            + (f" [bots behind in {behind:.0f}/{len(results[way])}]" if behind else "")
        )

    rows = [
        (
            f"{viewers} program viewers: Janus % core per viewer",
            cell("tuned", "viewers"),
            cell("default", "viewers"),
        )
    ]
    for k in sites:
        key = f"sites{k}"
        rows.append(
            (f"{k} two-way sites: Janus % core per site", cell("tuned", key), cell("default", key))
        )
        rates = [
            f"{m(w, key, 'up_pps'):.0f} / {m(w, key, 'down_pps'):.0f},"
            f" {m(w, key, 'us_per_packet'):.1f} µs; bots {m(w, key, 'bots_cpu'):.0f} % of a core"
            for w in ("tuned", "default")
        ]
        rows.append(
            (f"{k} two-way sites: RTP in / out (packets/s), Janus CPU/packet", rates[0], rates[1])
        )
    return rows


def cli() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--sites", default="100,200", help="two-way site counts")
    p.add_argument("--viewers", type=int, default=200, help="receive-only step")
    p.add_argument("--seconds", type=float, default=8.0, help="measuring window")
    args = p.parse_args()
    if os.geteuid() != 0:
        print("this bench needs root (network namespaces)", file=sys.stderr)
        return 2
    enter_isolated_netns()
    sites = [int(x) for x in args.sites.split(",") if x]
    rows = asyncio.run(run_province(args.runs, sites, args.viewers, args.seconds))
    print_rows(
        f"province relay: {args.runs} runs, medians, {os.cpu_count()} cores"
        " (% core per site = Janus CPU above idle / N)",
        ("what", "diemcau's Janus settings (now)", "Janus defaults (before)"),
        rows,
    )
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(cli())
