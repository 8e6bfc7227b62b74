"""What this server process holds now (admin): memory, open files, tasks, sessions.

An operator watching a server over days (and the churn fault run, docs/reliability.md)
reads here whether anything grows that should not: resident memory, open file
descriptors (every site socket is one), the event loop's tasks and live site sessions.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends

from diemcau.actors import Actor
from diemcau.api.deps import RuntimeDep, staff_actor
from diemcau.runtime import Runtime

__all__ = ["process_figures", "router"]

router = APIRouter(prefix="/api/admin", tags=["administration"])

_Admin = Annotated[Actor, Depends(staff_actor("admin"))]


def _rss_kb() -> int:
    """Resident memory of this process in KiB (0 where /proc is not there)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _open_files() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


def process_figures(runtime: Runtime) -> dict[str, int]:
    """The figures `GET /api/admin/process` answers."""
    return {
        "pid": os.getpid(),
        "rss_kb": _rss_kb(),
        "open_files": _open_files(),
        "tasks": len(asyncio.all_tasks()),
        "site_sessions": len(runtime.presence.live_sessions()),
        "requests_in_flight": runtime.presence.router.in_flight,
    }


@router.get("/process", summary="This server process: memory, open files, tasks, sessions")
async def process(runtime: RuntimeDep, _who: _Admin) -> dict[str, int]:
    return process_figures(runtime)
