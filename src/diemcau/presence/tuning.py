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

__all__ = ["GC_THRESHOLDS", "tune_process_gc", "event_loop_factory", "run_with_loop"]

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
