"""Process-wide garbage-collector settings for a server that holds every site's session.

Measured (docs/performance.md, "What the numbers taught"): with Python's default
thresholds a national join of 10,799 sites ran 20+ full collections of a growing
heap, each pausing the event loop for up to seconds, so joins and broadcasts
stalled and healthy sites missed heartbeats. Freezing what is alive once the
server is up (modules, the app, caches) and raising the thresholds leaves one to
three full collections per national join. Steady-state garbage is freed by
reference counting and young cycles by the cheap generations, so memory stays
bounded. It changes the whole process, so the program that owns the process
(the server's wiring, a benchmark) opts in; no service does it on its own.
"""

from __future__ import annotations

import gc

__all__ = ["GC_THRESHOLDS", "tune_process_gc"]

# First-generation threshold raised from 700; the older generations left at 10.
GC_THRESHOLDS = (10_000, 10, 10)


def tune_process_gc() -> None:
    """Collect once, move every object alive to the permanent generation, raise thresholds.

    Call it after the long-lived objects exist (services started, caches loaded).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
