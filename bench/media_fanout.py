"""Floor fan-out: what leaves a floor speaker's relay, with 34 and 63 relays declared.

Run (as root; it enters a private network namespace)::

    .venv/bin/python bench/media_fanout.py [--runs 3] [--relays 34,63] [--seconds 5]

(bench/media.py runs it too, as its ``fanout`` part.)

The speaker's relay runs in a network namespace of its own, joined to the
bench's by a veth pair (198.51.100.0/30): every byte it sends to central or
to another relay crosses the veth, so its egress is the veth's transmit
counter in ``/proc/<pid>/net/dev`` of that namespace. Central and the other
relays (real Janus processes, two event loops each, idle but for the program)
run in the bench's namespace. The speaker publishes a pre-encoded ~500 kbps
VP8 + Opus clip (`LightPublisher`) from the bench's side of the veth.

For each relay count, in the same run and on the same processes, the floor is
carried two ways (`MediaOrchestrator.floor_fanout`):

- ``source``: the speaker's relay remotizes the feed to central and to every
  other relay itself (the layout before central forwarding);
- ``central``: the speaker's relay sends it to central once, central
  ``rtp_forward``s it on to the other relays.

Reported per way: the speaker relay's egress while it holds the floor, and
floor handover (``set_floor`` → the first frame of the speaker decoded by a
viewer on the last declared relay, whose links are built last).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from diemcau.media.grants import SiteGrant
from diemcau.media.isolation import enter_isolated_netns
from media_kit import med, print_rows

VETH_BENCH, VETH_SPEAKER = "dcfan0", "dcfan1"
ADDR_BENCH, ADDR_SPEAKER = "198.51.100.1", "198.51.100.2"


def veth_tx_bytes(pid: int, dev: str) -> int:
    """Bytes sent so far on ``dev`` in the network namespace of process ``pid``."""
    with open(f"/proc/{pid}/net/dev") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name.strip() == dev:
                return int(rest.split()[8])
    raise LookupError(f"no {dev} in the namespace of {pid}")


class FanoutRig:
    """Central + N relays here, the speaker's relay behind a veth; stops everything."""

    def __init__(self, relays: int, base: Path) -> None:
        self.relays = relays
        self.base = base
        self.processes: dict[str, Any] = {}
        self.host: Any = None

    async def start(self) -> None:
        from diemcau.lab.netns import Host
        from diemcau.media.janus_config import JanusConfig, Listener
        from diemcau.media.node import JanusNode, LocalJanusProcess, free_tcp_port

        self.host = Host.new("speaker-relay")
        Host.here("bench").batch(
            [
                f"link add {VETH_BENCH} type veth peer name {VETH_SPEAKER} netns {self.host.pid}",
                f"addr add {ADDR_BENCH}/30 dev {VETH_BENCH}",
                f"link set {VETH_BENCH} up",
            ]
        )
        self.host.batch(
            [f"addr add {ADDR_SPEAKER}/30 dev {VETH_SPEAKER}", f"link set {VETH_SPEAKER} up"]
        )
        central = LocalJanusProcess.create("central", "central", self.base)
        self.processes["central"] = replace(central, rtp_port_range=(27000, 27999))
        for i in range(1, self.relays):
            p = LocalJanusProcess.create(f"r{i:02d}", "relay", self.base, provinces=(f"{i:02d}",))
            lo = 20000 + i * 100
            self.processes[p.node.name] = replace(p, rtp_port_range=(lo, lo + 99))
        for p in self.processes.values():
            p.node = replace(p.node, rtp_host=ADDR_BENCH)  # reachable from the speaker's side
        ws, admin = free_tcp_port(), free_tcp_port()
        node = JanusNode(
            name="speaker",
            role="relay",
            provinces=("99",),
            ws_url=f"ws://{ADDR_SPEAKER}:{ws}",
            admin_ws_url=f"ws://{ADDR_SPEAKER}:{admin}",
            admin_secret=os.urandom(12).hex(),
            admin_key=os.urandom(12).hex(),
            token_secret=os.urandom(12).hex(),
            rtp_host=ADDR_SPEAKER,
        )
        work = self.base / "speaker"
        layout = JanusConfig(
            name="speaker",
            folder=work / "conf",
            admin_secret=node.admin_secret,
            admin_key=node.admin_key,
            token_secret=node.token_secret,
            rtp_port_range=(30000, 30999),
            events_folder=work / "none",
            ws=Listener(ADDR_SPEAKER, ws),
            admin_ws=Listener(ADDR_SPEAKER, admin),
            ice_enforce_list=VETH_SPEAKER,
        )
        self.processes["speaker"] = LocalJanusProcess(
            node=node,
            workdir=work,
            ws_port=ws,
            admin_port=admin,
            rtp_port_range=(30000, 30999),
            layout=layout,
            netns=self.host.netns,
        )
        await asyncio.gather(*(p.start(20.0) for p in self.processes.values()))

    def nodes(self, relays: int) -> list[Any]:
        """Central, the speaker's relay and ``relays - 1`` others."""
        names = ["central", "speaker", *[f"r{i:02d}" for i in range(1, relays)]]
        return [self.processes[n].node for n in names]

    def egress(self) -> int:
        return veth_tx_bytes(self.processes["speaker"].pid, VETH_SPEAKER)

    async def stop(self) -> None:
        await asyncio.gather(*(p.stop() for p in self.processes.values()), return_exceptions=True)
        if self.host is not None:
            self.host.close()


async def speaker_publisher(grant: SiteGrant) -> Any:
    """The speaker site's publisher, on the bench's end of the veth (~500 kbps clip)."""
    import aioice.ice

    from diemcau.sim.janus_bots import JanusTarget
    from diemcau.sim.light_publisher import LightPublisher, PreEncodedClip

    clip = PreEncodedClip.make("SPEAKER", video_bps=450_000, size=(640, 360))
    target = JanusTarget.publish_of(grant)
    bot = LightPublisher(target, grant["publish"]["feed_id"], "SPEAKER", clip)
    # Its ICE must gather the veth address (other bots gather the namespace's 127.0.0.2).
    gather = aioice.ice.get_host_addresses

    def veth_only(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [ADDR_BENCH] if use_ipv4 else []

    aioice.ice.get_host_addresses = veth_only
    try:
        await bot.start()
    finally:
        aioice.ice.get_host_addresses = gather
    return bot


async def measure(
    rig: FanoutRig, relays: int, seconds: float, samples: int
) -> dict[str, dict[str, float]]:
    """Both ways for one relay count: egress (kbit/s) and handover p50 (s)."""
    from diemcau.media.orchestrator import MediaOrchestrator
    from diemcau.media.topology import SiteRef
    from diemcau.sim.janus_bots import JanusTarget, ViewerBot

    sites = [SiteRef("SPK", "99"), SiteRef("FAR", f"{relays - 1:02d}")]
    orch = MediaOrchestrator(rig.nodes(relays), sites, sync_interval=0.3)
    out: dict[str, dict[str, float]] = {}
    speaker = None
    try:
        await orch.start()
        await orch.start_program("fanout")
        speaker = await speaker_publisher(await orch.site_media_grant("SPK"))
        far = await orch.site_media_grant("FAR")
        far_t = JanusTarget.program_of(far)
        feed = speaker.feed_id
        for way in ("source", "central"):
            orch.floor_fanout = way  # type: ignore[assignment]
            await orch.set_floor("fanout", [])
            idle0, t0 = rig.egress(), time.monotonic()
            await asyncio.sleep(1.0)
            idle = (rig.egress() - idle0) / (time.monotonic() - t0)
            await orch.set_floor("fanout", ["SPK"])
            errors = list(orch.last_report.errors)
            await asyncio.sleep(1.0)
            b0, t0 = rig.egress(), time.monotonic()
            await asyncio.sleep(seconds)
            busy = (rig.egress() - b0) / (time.monotonic() - t0)
            links = sum(1 for lk in orch.cascade.records if lk.source_node == "speaker")
            if errors:
                print(f"  {way}: {len(errors)} link errors, e.g. {errors[0]}", file=sys.stderr)
            times: list[float] = []
            for _ in range(samples):
                await orch.set_floor("fanout", [])
                t0 = time.monotonic()
                await orch.set_floor("fanout", ["SPK"])
                viewer = ViewerBot(far_t, feed)
                try:
                    await viewer.start()
                    times.append(await viewer.wait_frames(1, 5.0, label="SPEAKER") - t0)
                finally:
                    await viewer.stop()
            out[way] = {
                "egress_kbps": 8 * busy / 1000,
                "idle_kbps": 8 * idle / 1000,
                "links_out": float(links),
                "handover_s": med(times),
            }
        await orch.set_floor("fanout", [])
        await orch.stop_program("fanout")
    finally:
        if speaker is not None:
            await speaker.stop()
        await orch.close()
    return out


async def run_fanout(
    runs: int, relay_counts: list[int], seconds: float, samples: int
) -> list[tuple[str, str, str]]:
    """Rows (what, measured central, reference source) as medians over ``runs``."""
    import tempfile

    results: dict[int, list[dict[str, dict[str, float]]]] = {n: [] for n in relay_counts}
    for run in range(runs):
        print(f"fanout run {run + 1}/{runs}", file=sys.stderr)
        with tempfile.TemporaryDirectory(prefix="diemcau-fanout-") as base:
            rig = FanoutRig(max(relay_counts), Path(base))
            try:
                await rig.start()
                for n in relay_counts:
                    print(f"  {n} relays", file=sys.stderr)
                    results[n].append(await measure(rig, n, seconds, samples))
            finally:
                await rig.stop()
    rows: list[tuple[str, str, str]] = []
    for n in relay_counts:

        def m(way: str, key: str, n: int = n) -> float:
            return med([r[way][key] for r in results[n]])

        rows.append(
            (
                f"{n} relays: speaker relay egress, floor held (kbit/s)",
                f"{m('central', 'egress_kbps'):.0f} ({m('central', 'links_out'):.0f} links out)",
                f"{m('source', 'egress_kbps'):.0f} ({m('source', 'links_out'):.0f} links out)",
            )
        )
        rows.append(
            (
                f"{n} relays: speaker relay egress, no floor (kbit/s)",
                f"{m('central', 'idle_kbps'):.0f}",
                f"{m('source', 'idle_kbps'):.0f}",
            )
        )
        rows.append(
            (
                f"{n} relays: floor handover -> first frame on the last relay",
                f"{1000 * m('central', 'handover_s'):.0f} ms",
                f"{1000 * m('source', 'handover_s'):.0f} ms",
            )
        )
    return rows


def cli() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--relays", default="34,63", help="relay counts declared (speaker's included)")
    p.add_argument("--seconds", type=float, default=5.0, help="egress window")
    p.add_argument("--samples", type=int, default=5, help="handovers per relay count")
    args = p.parse_args()
    if os.geteuid() != 0:
        print("this bench needs root (network namespaces)", file=sys.stderr)
        return 2
    enter_isolated_netns()
    counts = [int(x) for x in args.relays.split(",") if x]
    rows = asyncio.run(run_fanout(args.runs, counts, args.seconds, args.samples))
    print_rows(
        f"floor fan-out: {args.runs} runs, medians, {os.cpu_count()} cores",
        ("what", "central forwards (now)", "speaker relay sends each (before)"),
        rows,
    )
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(cli())
