"""Process-wide settings for a server that holds every site's session: GC and event loop.

Measured (docs/performance.md, "What the numbers taught"): with Python's default
thresholds a national join of 10,799 sites ran 20+ full collections of a growing
heap, each pausing the event loop for up to seconds, so joins and broadcasts
stalled and healthy sites missed heartbeats. Freezing what is alive once the
server is up (modules, the app, caches) and raising the thresholds leaves one to
three full collections per national join. Steady-state garbage is freed by
reference counting and young cycles by the cheap generations, so memory stays
bounded. It changes the whole process, so the program that owns the process
(the server's wiring, a benchmark) opts in; no service does it on its own.

The sessions themselves arrive after that first freeze: 10,794 of them are some
700,000 objects, and the next full collection (during the national meeting's
join, as measured) walks them all for 0.4–0.8 s with the loop stopped.
`HeapSettler` freezes them too, each time a crowd of new sessions has arrived,
and gives the frozen heap one deliberate full collection once many sessions
have closed since the last one (their cyclic leftovers are freed there, not
kept for the process's life).

The event loop: uvloop (libuv, in C) runs the same asyncio program with the
loop's own work (polling, reading sockets, scheduling callbacks) out of Python;
docs/performance.md has what it bought. `run_with_loop` is what the server's
entry point and the benchmarks use, so both run on the same loop.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Coroutine
from typing import TypeVar

__all__ = [
    "GC_THRESHOLDS",
    "HeapSettler",
    "tune_process_gc",
    "event_loop_factory",
    "run_with_loop",
]

T = TypeVar("T")

# First-generation threshold raised from 700; the older generations left at 10.
GC_THRESHOLDS = (10_000, 10, 10)


def tune_process_gc() -> None:
    """Collect once, move every object alive to the permanent generation, raise thresholds.

    Call it after the long-lived objects exist (services started, caches loaded).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class HeapSettler:
    """Keeps the objects of sessions that have arrived out of the full collections.

    `step` is called every second or so with how many sessions are online and how
    many have closed since the process started:

    * once `grow_min` more sessions are online than at the last freeze, the youngest
      generation is collected (a few milliseconds; with both young generations a
      national connect looked ~0.4 s slower in the presence bench) and everything
      alive is frozen (`gc.freeze`, constant time);
    * once more sessions have closed since the last full collection than
      `closed_share` of the crowd (and at least `grow_min`), and the online count
      held still since the previous step, the frozen heap is unfrozen, collected
      in full once (the closed sessions' cycles: with the standard loop 12
      objects a connection) and frozen again.

    Objects a session drops are still freed by reference counting while frozen;
    only their cycles wait for that second rule.
    """

    def __init__(self, grow_min: int = 256, closed_share: float = 0.25) -> None:
        if grow_min < 1 or not 0 < closed_share <= 1:
            raise ValueError("grow_min must be >= 1 and closed_share in (0, 1]")
        self.grow_min = grow_min
        self.closed_share = closed_share
        self._crowd = 0  # sessions online at the last freeze
        # Sessions closed up to the last full collection (made with the settler, by
        # `tune_process_gc`, before any session).
        self._closed_at = 0
        self._last_online = 0
        self.freezes = 0
        self.full_collections = 0

    def step(self, online: int, closed: int) -> str:
        """Freeze or settle as the rules say; returns ``"freeze"``, ``"collect"`` or ``""``."""
        still = abs(online - self._last_online) < max(8, online // 100)
        self._last_online = online
        closed_since = closed - self._closed_at
        if still and closed_since >= max(self.grow_min, self.closed_share * self._crowd):
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            self._crowd, self._closed_at = online, closed
            self.full_collections += 1
            return "collect"
        if online - self._crowd >= self.grow_min:
            gc.collect(0)
            gc.freeze()
            self._crowd = online
            self.freezes += 1
            return "freeze"
        if online < self._crowd:
            self._crowd = online  # a later crowd is counted from here
        return ""


def event_loop_factory(kind: str = "uvloop") -> Callable[[], asyncio.AbstractEventLoop]:
    """A new-loop factory: uvloop's (the default) or the standard library's (``asyncio``)."""
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    if kind != "asyncio":
        raise ValueError(f"unknown event loop '{kind}' (uvloop or asyncio)")
    return asyncio.new_event_loop


def run_with_loop(main: Coroutine[object, object, T], kind: str = "uvloop") -> T:
    """`asyncio.run` on the chosen loop (see `event_loop_factory`)."""
    with asyncio.Runner(loop_factory=event_loop_factory(kind)) as runner:
        return runner.run(main)
