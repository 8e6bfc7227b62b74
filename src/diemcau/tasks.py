"""Stopping background tasks reliably.

On Python 3.11, ``asyncio.wait_for`` can swallow a cancellation that arrives as
its inner await completes (CPython gh-86296), so a loop task may survive one
``cancel()`` and run on; awaiting it then hangs whoever is shutting down. Every
service stops its loops through `cancel_and_wait`, which cancels again until the
task is done and never waits longer than `timeout`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

__all__ = ["cancel_and_wait"]

log = logging.getLogger(__name__)


async def cancel_and_wait(task: asyncio.Task[Any] | None, timeout: float = 5.0) -> None:
    """Cancel `task` (again and again if it swallows it) until done or `timeout` passes."""
    if task is None or task.done():
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not task.done():
        task.cancel()
        remaining = deadline - loop.time()
        if remaining <= 0:
            log.error("task %s did not stop within %.1f s", task.get_name(), timeout)
            return
        await asyncio.wait({task}, timeout=min(0.1, remaining))
    if not task.cancelled() and task.exception() is not None:
        log.warning("task %s ended with %r", task.get_name(), task.exception())
