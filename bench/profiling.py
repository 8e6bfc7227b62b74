"""A py-spy CPU profile of one phase of a bench's server (``BENCH_PROFILE=DIR``).

Shared by `bench/presence.py` (join, steady, broadcast) and `bench/meetings.py`
(start → every site present). ``BENCH_PROFILE_NATIVE=1`` adds native frames (the
loop, the kernel calls) in place of a non-blocking sample.
"""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import signal
import sys
import time
from pathlib import Path

__all__ = ["GcPauses", "Spy", "top_functions"]


class GcPauses:
    """The cyclic collector's pauses in this process while open (``with GcPauses() as g``).

    ``g.total_ms``: every collection's pause added up; ``g.full``, ``g.full_ms``: the
    full (oldest-generation) collections among them.
    """

    def __init__(self) -> None:
        self.count = 0
        self.total_ms = 0.0
        self.full = 0
        self.full_ms = 0.0
        self._t0 = 0.0

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
            return
        ms = (time.perf_counter() - self._t0) * 1000
        self.count += 1
        self.total_ms += ms
        if info["generation"] == 2:
            self.full += 1
            self.full_ms += ms

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self._on_gc)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._on_gc)


class Spy:
    """A py-spy CPU profile of one phase of a server (``BENCH_PROFILE=DIR``; else nothing).

    Each phase is written as collapsed stacks to ``DIR/<variant>-<phase>.txt`` and its
    top functions by own CPU time are printed on stderr.
    """

    def __init__(self, proc: asyncio.subprocess.Process | None, out: Path | None) -> None:
        self.proc = proc
        self.out = out

    @classmethod
    async def start(cls, pid: int, name: str) -> Spy:
        folder = os.environ.get("BENCH_PROFILE")
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if not folder or not Path(spy).exists():
            return cls(None, None)
        out = Path(folder) / f"{name}.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        native = ["--native"] if os.environ.get("BENCH_PROFILE_NATIVE") else ["--nonblocking"]
        proc = await asyncio.create_subprocess_exec(
            spy, "record", "--pid", str(pid), "--rate", "250", "--format", "raw",
            *native, "-o", str(out),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        await asyncio.sleep(0.5)  # attached
        return cls(proc, out)

    async def stop(self) -> None:
        if self.proc is None or self.out is None:
            return
        self.proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(self.proc.wait(), 60)
        if self.out.exists():
            print(f"    profile {self.out.name}:", file=sys.stderr)
            for line in top_functions(self.out.read_text(), 12):
                print(f"      {line}", file=sys.stderr)


def top_functions(collapsed: str, k: int) -> list[str]:
    """The `k` functions with the most own samples in py-spy's collapsed stacks."""
    own: dict[str, int] = {}
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        total += int(count)
        leaf = stack.rsplit(";", 1)[-1]
        own[leaf] = own.get(leaf, 0) + int(count)
    ranked = sorted(own.items(), key=lambda kv: -kv[1])[:k]
    return [f"{100 * n / max(1, total):5.1f}%  {name}" for name, n in ranked]
