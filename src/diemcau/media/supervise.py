"""Restarting local Janus processes that die, as systemd does for field nodes.

A field node runs under a systemd unit with ``Restart=always`` and
``RestartSec=1`` (docs/deploy.md): a Janus that crashes or is killed is back,
empty, about a second later, and the control plane rebuilds what it held
(`MediaOrchestrator.on_node_restarted`). `JanusSupervisor` gives the processes
this host runs itself (the server's local plane, the lab's nodes) the same
behaviour, so a fault test sees what production would. A process stopped on
purpose (`LocalJanusProcess.stop`) is left stopped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from diemcau.media.node import LocalJanusProcess
from diemcau.tasks import cancel_and_wait

__all__ = ["RESTART_DELAY", "JanusSupervisor"]

log = logging.getLogger(__name__)

# systemd's RestartSec of the rendered units.
RESTART_DELAY = 1.0


class JanusSupervisor:
    """Watches local Janus processes and starts again any that exit unasked.

    Args:
        processes: the processes to watch (read at every check, so it may grow).
        delay: seconds between noticing a death and the restart.
        interval: how often the processes are looked at.
    """

    def __init__(
        self,
        processes: Callable[[], Iterable[LocalJanusProcess]],
        *,
        delay: float = RESTART_DELAY,
        interval: float = 0.1,
    ) -> None:
        self._processes = processes
        self.delay = delay
        self.interval = interval
        self.restarts: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(), name="janus-supervisor")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _loop(self) -> None:
        died: dict[str, float] = {}
        while True:
            now = time.monotonic()
            for proc in list(self._processes()):
                name = proc.node.name
                dead = proc.wanted and proc.proc is not None and proc.proc.poll() is not None
                if not dead:
                    died.pop(name, None)
                    continue
                first = died.setdefault(name, now)
                if now - first < self.delay:
                    continue
                log.warning("janus %s exited: restarting", name)
                try:
                    await proc.start()
                except Exception:
                    log.exception("janus %s did not restart", name)
                    died[name] = time.monotonic()  # try again after the delay
                    continue
                died.pop(name, None)
                self.restarts[name] = self.restarts.get(name, 0) + 1
            await asyncio.sleep(self.interval)
