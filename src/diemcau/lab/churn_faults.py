"""Reconnect churn with a meeting live: sites cut off and back, 10 times a second.

Every 1/`rate` seconds one connected site loses its connection without a close (a
cable pulled); it reconnects and resumes at once, as the simulator does. Meanwhile
the sites file reports and acknowledge directives and the chair issues directives
and passes the floor. The server runs in its own process; its resident memory,
open files and asyncio tasks are read from ``GET /api/admin/process`` after a
warm-up and again at the end, all sites connected both times: what churn leaks
shows there (docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import TypedDict

import httpx

from diemcau.lab.control_process import ControlProcess
from diemcau.lab.fault_stage import FaultResult, FaultStage, seed_sites
from diemcau.lab.losses import Losses
from diemcau.lab.server import STAFF_PASSWORD, free_port

__all__ = ["CHURN_BOUND_S", "RSS_SLACK_KB", "TASK_SLACK", "churn"]

# A cut-off site is connected again within this.
CHURN_BOUND_S = 5.0
# What may differ between the two readings, all sites connected both times: memory
# settles (allocator arenas, caches filled once), a few tasks or files may be in
# flight at the moment of reading. A leak per reconnect is hundreds or thousands.
RSS_SLACK_KB = 24 * 1024
TASK_SLACK = 12


class ProcessFigures(TypedDict):
    """What this run reads of ``GET /api/admin/process`` (it answers more)."""

    rss_kb: int
    open_files: int
    tasks: int
    site_sessions: int


async def _figures(base: str) -> ProcessFigures:
    async with httpx.AsyncClient(base_url=base, timeout=20) as c:
        r = await c.post("/api/auth/login", json={"username": "admin", "password": STAFF_PASSWORD})
        r.raise_for_status()
        auth = {"Authorization": f"Bearer {r.json()['token']}"}
        answer = await c.get("/api/admin/process", headers=auth)
        answer.raise_for_status()
        figures: ProcessFigures = answer.json()
        return figures


async def _all_connected(stage: FaultStage, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while stage.sites.online() < len(stage.sites.sites):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{stage.sites.online()} sites connected after {timeout} s")
        await asyncio.sleep(0.05)


async def churn(
    tmp: Path,
    *,
    sites: int = 40,
    rate: float = 10.0,
    duration_s: float = 30.0,
    warmup_s: float = 5.0,
    database_url: str | None = None,
) -> FaultResult:
    """Cut `rate` sites a second for `duration_s`; see the module docstring."""
    url = database_url or f"sqlite+aiosqlite:///{tmp / 'control.db'}"
    codes, ids = await seed_sites(url, sites)
    server = ControlProcess(tmp / "server", url, free_port(), free_port())
    await server.start()
    stage = FaultStage(url, codes, ids, [server.base_url], [server.presence_url])
    rng = random.Random(16)  # noqa: S311 - simulation, not security
    cuts: list[tuple[int, float]] = []
    failed = ""
    start: ProcessFigures | None = None
    end: ProcessFigures | None = None
    losses = Losses()
    try:
        await stage.begin()
        await asyncio.sleep(warmup_s)
        await _all_connected(stage, 30)
        start = await _figures(server.base_url)
        began = time.monotonic()
        for n in range(int(duration_s * rate)):
            # On a fixed schedule: a slow round does not lower the rate.
            await asyncio.sleep(max(0.0, began + n / rate - time.monotonic()))
            online = [s for s in stage.sites.sites if s.state == "online" and s.ws is not None]
            if online:
                site = rng.choice(online)
                assert site.ws is not None
                site.ws.transport.abort()  # no close frame, like a cut cable
                cuts.append((site.site_id, time.monotonic()))
        losses = await stage.finish()
        await _all_connected(stage, 30)
        end = await _figures(server.base_url)
    except Exception as exc:
        failed = f"{type(exc).__name__}: {exc}; {server.log_tail(5)}"
    finally:
        await stage.close()
        await server.stop()
    recovery = []
    welcomed = stage.sites.ledger.welcomed_at
    for sid, at in cuts:
        later = [t for t in welcomed.get(sid, ()) if t > at]
        if later:
            recovery.append(min(later) - at)
    notes = ""
    if start is not None and end is not None:
        grew = end["rss_kb"] - start["rss_kb"]
        notes = (
            f"RSS {start['rss_kb'] / 1024:.1f} -> {end['rss_kb'] / 1024:.1f} MiB, "
            f"open files {start['open_files']} -> {end['open_files']}, "
            f"tasks {start['tasks']} -> {end['tasks']}, "
            f"sessions {start['site_sessions']} -> {end['site_sessions']}, "
            f"{len(cuts)} cuts in {duration_s:.0f} s"
        )
        leaks = []
        if grew > RSS_SLACK_KB:
            leaks.append(f"RSS grew {grew / 1024:.1f} MiB")
        if end["tasks"] - start["tasks"] > TASK_SLACK:
            leaks.append(f"tasks {start['tasks']} -> {end['tasks']}")
        if end["open_files"] - start["open_files"] > TASK_SLACK:
            leaks.append(f"open files {start['open_files']} -> {end['open_files']}")
        failed = failed or "; ".join(leaks)
    return FaultResult(
        scenario=f"churn {rate:g}/s x {duration_s / 60:.1f} min",
        action=f"{rate:g} connections cut per second (no close frame) among {sites} sites "
        f"for {duration_s:.0f} s, meeting live, sites filing and acknowledging",
        affected=len(cuts),
        recovery_s=recovery,
        bound_s=CHURN_BOUND_S,
        losses=losses,
        notes="; ".join(x for x in [notes, *losses.details[:3]] if x),
        failed=failed,
    )
