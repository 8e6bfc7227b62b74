"""Stopping background tasks reliably.

On Python 3.11, ``asyncio.wait_for`` can swallow a cancellation that arrives as
its inner await completes (CPython gh-86296), so a loop task may survive one
``cancel()`` and run on; awaiting it then hangs whoever is shutting down. Every
service stops its loops through `cancel_and_wait`, which cancels again until the
task is done and never waits longer than `timeout`.

The other way round, some work must not be cut half-way by a cancel: `run_to_end`;
and a service's periodic loop runs each step that way (`Periodic`), so stopping it
only ever ends a wait, never a store call in the middle.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from diemcau.store.outage import is_store_outage

__all__ = [
    "STEP_GRACE_S",
    "Periodic",
    "cancel_and_wait",
    "log_step_failure",
    "run_to_end",
]

T = TypeVar("T")

log = logging.getLogger(__name__)

# How long a periodic step may go on after its loop was told to stop.
STEP_GRACE_S = 10.0


async def cancel_and_wait(task: asyncio.Task[object] | None, timeout: float = 5.0) -> None:
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


class Periodic:
    """A service's periodic loop: `step` every `period` seconds, as one named task.

    `start` does nothing while the loop runs, nor when `period` is 0 (the service was
    built without this loop: tests run its step themselves). The first step runs
    `first` seconds after the start (default: one `period`). A step that fails (the
    store out of reach) is logged and the loop goes on: the next round tries again.
    `stop` ends the wait between rounds at once; a round in progress is let finish
    (`run_to_end`, cut after `grace`), so a stop never leaves a store write half-way.
    """

    def __init__(
        self,
        name: str,
        period: float,
        step: Callable[[], Awaitable[object]],
        *,
        what: str,
        first: float | None = None,
        grace: float = STEP_GRACE_S,
    ) -> None:
        self.name = name
        self.period = period
        self.step = step
        self.what = what
        self.first = first
        self.grace = grace
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None and self.period > 0:
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task, self.grace + 1)

    async def _run(self) -> None:
        await asyncio.sleep(self.period if self.first is None else self.first)
        while True:
            try:
                await run_to_end(self.step(), grace=self.grace)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log_step_failure(log, self.what, exc)
            await asyncio.sleep(self.period)


def log_step_failure(logger: logging.Logger, what: str, exc: BaseException) -> None:
    """Log a failed background step: one line while the store is out of reach (it will
    be back; a traceback every round would bury the log), the whole traceback else."""
    if is_store_outage(exc):
        first = str(exc).strip().splitlines()
        logger.warning("%s: the store cannot serve now (%s)", what, first[0] if first else exc)
    else:
        logger.error("%s failed", what, exc_info=exc)
