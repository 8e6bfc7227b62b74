"""Recording benchmark: the central node's CPU with recording on and off, and post-processing cost.

Run (as root; it enters a private network namespace)::

    .venv/bin/python bench/recording.py [--seconds 15] [--rounds 2]

A real central Janus and one relay; the chair's bot publishes at central, two
sites' bots on the relay. Each round has a phase with recording off and one with
it on (the same run, alternating, so the machine's other load hits both alike);
in every phase the floor passes chair → site A → site B, so the "on" phases include
the segment rotations a floor change causes. Measured:

1. central Janus CPU (% of one core, from /proc/<pid>/stat) off vs on, and the
   bytes written per second while recording;
2. post-processing of everything recorded (janus-pp-rec, the composed program,
   one clip per intervention): wall time and the tools' CPU time, scaled to one
   hour of program.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from diemcau.media.isolation import enter_isolated_netns

TICK = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


@dataclass
class Grant:
    id: int
    site_id: int
    granted_at: datetime
    revoked_at: datetime | None
    granted_by: str = "bench"


class History:
    """The meeting's floor as the post-processor asks for it."""

    def __init__(self) -> None:
        self.grants: list[Grant] = []

    async def floor(self, meeting_id: int) -> list[Grant]:
        return self.grants

    async def meeting(self, meeting_id: int) -> None:
        return None  # no meeting row: files are kept for the server's default retention


class Sites:
    def __init__(self, codes: dict[int, str]) -> None:
        self.codes = codes

    async def get(self, site_id: int) -> Any:
        code = self.codes[site_id]
        return SimpleNamespace(id=site_id, code=code, name=code, province_id=None)


async def main(args: argparse.Namespace) -> int:
    from diemcau.media.cluster import LocalCluster
    from diemcau.media.node import NodeRegistry
    from diemcau.media.orchestrator import MediaOrchestrator
    from diemcau.media.recording import ProgramRecorder
    from diemcau.media.topology import SiteRef
    from diemcau.recording.config import RecordingConfig
    from diemcau.recording.files import FileStore
    from diemcau.recording.policy import Policies
    from diemcau.recording.processor import PostProcessor
    from diemcau.recording.segments import LiveRecorder
    from diemcau.sim.janus_bots import JanusTarget, PublisherBot
    from diemcau.store import Database, migrate

    work = Path(tempfile.mkdtemp(prefix="diemcau-bench-rec-"))
    url = f"sqlite+aiosqlite:///{work / 'bench.db'}"
    await migrate(url)
    db = Database(url)
    config = RecordingConfig(root=work / "recordings", node_root=str(work / "recordings"))
    cluster = LocalCluster(relays=[("r1", ("01",), 10)], base_dir=work / "janus")
    await cluster.start()
    registry = NodeRegistry(interval=0.5, down_after=3.0, request_timeout=1.0)
    orch = MediaOrchestrator(
        cluster.nodes(), [SiteRef("A", "01"), SiteRef("B", "01")], registry=registry
    )
    await orch.start()
    registry.start()
    recording = {"on": False}

    async def wanted(_meeting: int) -> bool:
        return recording["on"]

    live = LiveRecorder(db, ProgramRecorder(lambda: orch), config, clock=time.time, wanted=wanted)
    live.start()
    history, bots = History(), []
    phases: dict[str, list[tuple[float, int]]] = {"off": [], "on": []}
    try:
        grant = await orch.start_program(1)

        bots.append(
            PublisherBot(JanusTarget.publish_of(grant), grant["publish"]["feed_id"], "CHU TRI")
        )
        for code in ("A", "B"):
            g = await orch.site_media_grant(code)
            bots.append(
                PublisherBot(JanusTarget.publish_of(g), g["publish"]["feed_id"], f"SITE {code}")
            )
        for bot in bots:
            await bot.start()
        await live.follow(1)
        pid = cluster.central.pid
        assert pid is not None
        await asyncio.sleep(2)
        floor_id = 0
        for _ in range(args.rounds):
            for mode in ("off", "on"):
                recording["on"] = mode == "on"
                live.poke()
                await asyncio.sleep(1.0)  # let the switch settle outside the window
                size0, ticks0, t0 = folder_bytes(config.root), cpu_ticks(pid), time.monotonic()
                for speakers in ([], ["A"], ["B"]):
                    await orch.set_floor(1, speakers)
                    live.poke()
                    now = datetime.now(UTC)
                    if history.grants and history.grants[-1].revoked_at is None:
                        history.grants[-1].revoked_at = now
                    if speakers and mode == "on":
                        floor_id += 1
                        history.grants.append(Grant(floor_id, ord(speakers[0]), now, None))
                    await asyncio.sleep(args.seconds / 3)
                elapsed = time.monotonic() - t0
                used = (cpu_ticks(pid) - ticks0) / TICK / elapsed * 100
                phases[mode].append((used, int((folder_bytes(config.root) - size0) / elapsed)))
            if history.grants and history.grants[-1].revoked_at is None:
                history.grants[-1].revoked_at = datetime.now(UTC)
        recording["on"] = False
        live.poke()
        await asyncio.sleep(1.0)
        await live.unfollow(1, datetime.now(UTC))
    finally:
        await live.stop()
        for bot in bots:
            await bot.stop()
        await orch.close()
        await registry.stop()
        await cluster.stop()

    files = FileStore(db, config)
    processor = PostProcessor(
        db,
        config,
        files,
        Policies(db),
        history,
        Sites({65: "A", 66: "B"}),  # type: ignore[arg-type]
        clock=time.time,
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    await processor.process(1)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    tools_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    made = await files.of_meeting(1)
    program = next((f for f in made if f.kind == "program"), None)
    program_s = program.duration_s if program and program.duration_s else float("nan")
    await db.dispose()
    shutil.rmtree(work, ignore_errors=True)

    def mid(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    off_cpu, on_cpu = mid([c for c, _ in phases["off"]]), mid([c for c, _ in phases["on"]])
    rate = mid([float(b) for _, b in phases["on"]])
    print(
        f"recording bench: {args.rounds} rounds × (off, on) × {args.seconds:.0f} s, "
        "chair + 2 speakers (320×240 VP8 ~400 kbps + Opus)"
    )
    print()
    print("| what | measured |")
    print("|---|---|")
    print(f"| central Janus CPU, recording off | {off_cpu:.1f} % of a core |")
    print(
        f"| central Janus CPU, recording on | {on_cpu:.1f} % of a core "
        f"({on_cpu - off_cpu:+.1f} points) |"
    )
    print(
        f"| written while recording | {rate / 1024:.0f} KiB/s "
        f"({rate * 3600 / 1024**3:.2f} GiB per hour) |"
    )
    print(f"| program recorded | {program_s:.1f} s, {len(made) - 1} clips |")
    print(
        f"| post-processing wall time | {wall:.1f} s = {wall / program_s * 3600 / 60:.1f} min "
        "per hour of program |"
    )
    print(
        f"| post-processing CPU (tools) | {tools_cpu:.1f} s = "
        f"{tools_cpu / program_s * 3600 / 60:.1f} core-min per hour of program |"
    )
    return 0


def cli() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--seconds", type=float, default=15.0, help="length of each phase")
    p.add_argument("--rounds", type=int, default=2, help="(off, on) pairs")
    args = p.parse_args()
    if os.geteuid() == 0:
        enter_isolated_netns()
    else:
        print("note: not root, running without the isolated namespace", file=sys.stderr)
    return asyncio.run(main(args))


if __name__ == "__main__":
    sys.exit(cli())
