"""Stopping background tasks reliably.

On Python 3.11, ``asyncio.wait_for`` can swallow a cancellation that arrives as
its inner await completes (CPython gh-86296), so a loop task may survive one
``cancel()`` and run on; awaiting it then hangs whoever is shutting down. Every
service stops its loops through `cancel_and_wait`, which cancels again until the
task is done and never waits longer than `timeout`.

The other way round, some work must not be cut half-way by a cancel: `run_to_end`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

__all__ = ["cancel_and_wait", "run_to_end"]

T = TypeVar("T")

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


async def run_to_end(work: Awaitable[T], *, grace: float | None = None) -> T:
    """Await `work` to its end even if the caller is cancelled meanwhile, then re-raise.

    For a store call and what must follow it: a cancel landing inside a SQLAlchemy
    call on aiosqlite can make the pool's reset of the connection fail ("Exception
    during reset") and leave a connection close that never ends (the process then
    never exits), and a write whose caller vanished still commits while the caller's
    own bookkeeping after it is skipped. The caller's cancel is raised once `work`
    is done; with `grace`, `work` itself is cancelled (and logged) if it is still
    running `grace` seconds after the first cancel, so a stop stays bounded.
    """
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    deadline: float | None = None
    cancelled = False
    while not task.done():
        left = None if deadline is None else deadline - loop.time()
        if left is not None and left <= 0:
            log.error("%s still running %.1f s after a cancel: cancelled", task.get_name(), grace)
            task.cancel()
            break
        try:
            await asyncio.wait({task}, timeout=left)
        except asyncio.CancelledError:
            if not cancelled and grace is not None:
                deadline = loop.time() + grace
            cancelled = True
    if cancelled:
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.error(
                "%s failed while its caller stopped", task.get_name(), exc_info=task.exception()
            )
        raise asyncio.CancelledError
    return task.result()
