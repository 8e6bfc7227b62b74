"""The demo's child processes: the site simulator and the media sites, started and ended by PID.

The simulated sites run in their own processes so the server keeps a core of its own
(docs/demo.md). Each child is ``python -m diemcau.demo <role>`` with the join codes in a
JSON file and its output in ``<data>/<role>.log``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from diemcau.demo.output import say
from diemcau.demo.sites import DemoSite

__all__ = ["Children", "Role"]

Role = Literal["sim", "media"]


class Children:
    """The child processes of one demo run.

    Args:
        data_dir: where the join-code listings and logs go.
        url: the server's base URL, handed to every child.
        env: extra environment for the children.
    """

    def __init__(self, data_dir: Path, url: str, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.url = url
        self.env = dict(os.environ, **(env or {}))
        self._procs: dict[Role, subprocess.Popen[bytes]] = {}

    def spawn(self, role: Role, sites: Sequence[DemoSite], chair_grant: Path | None = None) -> int:
        """Start the ``role`` child for ``sites``; returns its PID."""
        codes = self.data_dir / f"{role}-sites.json"
        listing = [{"join_code": s.join_code, "label": s.name} for s in sites]
        codes.write_text(json.dumps(listing, ensure_ascii=False), encoding="utf-8")
        cmd = [sys.executable, "-m", "diemcau.demo", role, "--url", self.url]
        cmd += ["--codes", str(codes)]
        if chair_grant is not None:
            cmd += ["--chair-grant", str(chair_grant)]
        log_path = self.data_dir / f"{role}.log"
        with log_path.open("ab") as log:
            proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=self.env
            )
        self._procs[role] = proc
        say(f"{role}: {len(sites)} sites in process {proc.pid} (log {log_path})")
        return proc.pid

    def pids(self) -> dict[str, int]:
        """Role -> PID of every child started."""
        return {role: proc.pid for role, proc in self._procs.items()}

    def signal(self, role: Role, sig: signal.Signals) -> bool:
        """Send ``sig`` to the ``role`` child if it still runs; whether it was sent."""
        proc = self._procs.get(role)
        if proc is None or proc.poll() is not None:
            return False
        proc.send_signal(sig)
        return True

    async def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM each child, wait for it without blocking the server, then kill."""
        procs = list(self._procs.values())
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in procs:
            while proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            say(f"process {proc.pid} ended ({proc.returncode})")
        self._procs.clear()

    def kill(self) -> None:
        """Last resort when the event loop is gone: kill what is left."""
        for proc in self._procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self._procs.clear()
