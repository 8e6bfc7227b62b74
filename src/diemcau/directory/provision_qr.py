"""QR codes of the join links printed on the sheets, made inline or in worker processes.

QR codes are the costly part of a provisioning run (segno evaluates all eight masks,
a few milliseconds each), so large runs spread them over worker processes.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import TypedDict

import segno

from diemcau.directory.provision_cards import Card

__all__ = ["ProgressCallback", "qr_svg", "render_qr"]

ProgressCallback = Callable[[int, int], None]

# Below this many QR codes a process pool costs more to start than it saves.
_POOL_THRESHOLD = 200


# One source for the QR options, used inline and passed to the worker processes.
class _QrMake(TypedDict):
    error: str
    boost_error: bool
    micro: bool


class _QrSvg(TypedDict):
    border: int
    omitsize: bool
    dark: str


_QR_MAKE: _QrMake = {"error": "m", "boost_error": False, "micro": False}
_QR_SVG: _QrSvg = {"border": 4, "omitsize": True, "dark": "#000"}

# A QR worker: JSON-encoded links on stdin, one JSON-encoded SVG per line on stdout.
# It runs as ``python -c`` and imports only segno: unlike multiprocessing's
# "spawn", it never re-imports the caller's __main__, and unlike "fork" it does
# not copy the parent's database threads.
_WORKER = """
import json, sys
import segno
make_kw, svg_kw = json.loads(sys.argv[1]), json.loads(sys.argv[2])
for line in sys.stdin:
    svg = segno.make(json.loads(line), **make_kw).svg_inline(**svg_kw)
    sys.stdout.write(json.dumps(svg) + "\\n")
sys.stdout.flush()
"""


def qr_svg(data: str) -> str:
    """An inline SVG QR code of `data` (error correction M, sized by CSS)."""
    svg: str = segno.make(data, **_QR_MAKE).svg_inline(**_QR_SVG)
    return svg


async def _render_inline(cards: Sequence[Card], tick: Callable[[], None]) -> None:
    for index, card in enumerate(cards):
        card.svg = qr_svg(card.link)
        tick()
        if index % 50 == 49:
            await asyncio.sleep(0)  # let other tasks run


async def _render_worker(cards: Sequence[Card], tick: Callable[[], None]) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _WORKER,
        json.dumps(_QR_MAKE),
        json.dumps(_QR_SVG),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        limit=1 << 20,
    )
    assert proc.stdin is not None and proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout

    async def feed() -> None:
        # Fed concurrently with reading, so neither pipe can fill up and deadlock.
        stdin.write("".join(json.dumps(c.link) + "\n" for c in cards).encode())
        await stdin.drain()
        stdin.close()

    feeder = asyncio.create_task(feed())
    try:
        for card in cards:
            line = await stdout.readline()
            if not line:
                raise RuntimeError("QR worker stopped early")
            card.svg = json.loads(line)
            tick()
        await feeder
        if await proc.wait() != 0:
            raise RuntimeError(f"QR worker failed with exit code {proc.returncode}")
    finally:
        feeder.cancel()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def render_qr(
    cards: list[Card], progress: ProgressCallback | None, workers: int | None
) -> None:
    """Fill in every card's QR code: inline for small runs, else in worker processes."""
    total = len(cards)
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress and (done % 25 == 0 or done == total):
            progress(done, total)

    if progress:
        progress(0, total)
    n_workers = workers if workers is not None else (os.cpu_count() or 1)
    if total < _POOL_THRESHOLD or n_workers < 2:
        await _render_inline(cards, tick)
        return
    slices = [cards[i::n_workers] for i in range(n_workers)]
    tasks = [asyncio.create_task(_render_worker(part, tick)) for part in slices if part]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
