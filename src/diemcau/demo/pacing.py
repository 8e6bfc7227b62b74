"""The pace of the demo's periodic actions: a stop ends the wait, never an action halfway.

The floor rotation and the status line call the meetings service, which holds a database
session while it works. Cancelling such a call at shutdown leaves the session's rollback
to a cancelled task (a traceback from the connection pool); the demo's loops instead
wait on a stop event and finish the action in hand before they return.
"""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["StopRequest", "pause", "settle"]


async def pause(stop: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds`` or until ``stop`` is set; True when the loop should go on."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return not stop.is_set()


class StopRequest:
    """Ctrl-C (or SIGTERM, or ``--duration``): the first stops in order, the next one now.

    Attributes:
        stop: set by the first request: the sites leave, then the server stops.
        hurry: set by a second request: stop waiting for the server to settle.
    """

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.hurry = asyncio.Event()

    def request(self) -> None:
        if self.stop.is_set():
            self.hurry.set()
        self.stop.set()


async def settle(
    quiet_s: float = 0.5, timeout: float = 5.0, hurry: asyncio.Event | None = None
) -> bool:
    """Wait until no task of this event loop started or ended for ``quiet_s`` seconds.

    Used once the demo's sites have left: the server reacts to thousands of departures
    (attendance, presence, alert rules) in tasks of its own. Returns False when the
    loop was still busy after ``timeout`` seconds, or when ``hurry`` was set. A
    national server never goes quiet (its periodic work starts tasks all the time),
    so the bound is short: what is still running then is the presence listeners'
    work, which the server's own stop drains before it closes the store.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    step = 0.1
    last: set[asyncio.Task[object]] = set()
    quiet_since = loop.time()
    while loop.time() < deadline and not (hurry is not None and hurry.is_set()):
        tasks = asyncio.all_tasks()
        if tasks != last:
            last, quiet_since = tasks, loop.time()
        elif loop.time() - quiet_since >= quiet_s:
            return True
        await asyncio.sleep(step)
    return False
