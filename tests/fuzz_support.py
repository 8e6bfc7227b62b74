"""What every fuzz test shares: how many examples to run, and a live server in a thread.

The fuzz tests (`test_fuzz_*.py`) are property-based: Hypothesis draws the
inputs. In CI they run a small, fixed number of examples per target with a
derandomized seed, so a run is bounded in time and repeatable; a long hunt sets
``DIEMCAU_FUZZ_SCALE`` (each target's count times that) and
``DIEMCAU_FUZZ_SEED=random`` (new inputs each run), as ``scripts/fuzz.sh`` does
(docs/security.md, "What was fuzzed and what it found").
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from hypothesis import HealthCheck, Phase, settings

from tests.api_world import World, build_world

__all__ = ["Live", "examples", "fuzz_settings", "live_world"]


def examples(ci_default: int) -> int:
    """Examples per target: `ci_default` times ``DIEMCAU_FUZZ_SCALE`` (1 when unset).

    A factor rather than a count: the targets' CI counts differ a hundredfold (a
    route gets a few draws, a whole site session a hundred), and a long hunt
    should deepen each in proportion.
    """
    raw = os.environ.get("DIEMCAU_FUZZ_SCALE", "").strip()
    if not raw:
        return ci_default
    scale = int(raw)
    if scale < 1:
        raise ValueError(f"DIEMCAU_FUZZ_SCALE must be a whole number ≥ 1, not {raw!r}")
    return ci_default * scale


def fuzz_settings(ci_default: int, *, shrink: bool = True) -> settings:
    """Hypothesis settings of the fuzz tests: bounded, repeatable, no example database.

    `ci_default` is the count for CI, scaled here by `examples`.

    No example database: nothing is written to the work tree, and a CI run is the
    same run every time (``derandomize``) unless ``DIEMCAU_FUZZ_SEED=random``.
    """
    phases = [Phase.explicit, Phase.generate] + ([Phase.shrink] if shrink else [])
    return settings(
        max_examples=examples(ci_default),
        derandomize=os.environ.get("DIEMCAU_FUZZ_SEED", "") != "random",
        database=None,
        deadline=None,
        phases=phases,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )


@dataclass
class Live:
    """The API test world served over real HTTP on a loopback port."""

    base_url: str
    world: World
    loop: asyncio.AbstractEventLoop

    def run(self, coro: Any, timeout: float = 60.0) -> Any:
        """Run a coroutine on the server's loop (where the runtime lives) and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


@contextmanager
def live_world(database_url: str) -> Iterator[Live]:
    """`build_world` plus uvicorn on 127.0.0.1, both on one event loop in a thread.

    The fuzzers are synchronous (Hypothesis drives them); the runtime's engines,
    locks and tasks belong to one loop, so the app must be served from that loop
    rather than called from the test's.
    """
    loop = asyncio.new_event_loop()
    ready: concurrent.futures.Future[Live] = concurrent.futures.Future()
    stop = threading.Event()

    async def main() -> None:
        try:
            async with build_world(database_url) as world:
                assert world.app is not None
                config = uvicorn.Config(
                    world.app,
                    host="127.0.0.1",
                    port=0,
                    lifespan="off",  # build_world started the runtime already
                    log_level="warning",
                    access_log=False,
                )
                server = uvicorn.Server(config)
                task = asyncio.create_task(server.serve())
                while not server.started:
                    if task.done():
                        task.result()
                    await asyncio.sleep(0.01)
                port = server.servers[0].sockets[0].getsockname()[1]
                ready.set_result(Live(f"http://127.0.0.1:{port}", world, loop))
                while not stop.is_set():
                    await asyncio.sleep(0.05)
                server.should_exit = True
                await task
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            raise

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    try:
        yield ready.result(timeout=180)
    finally:
        stop.set()
        thread.join(timeout=60)
        loop.close()
