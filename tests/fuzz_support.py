"""What every fuzz test shares: how many examples to run, and a live server in a thread.

The fuzz tests (`test_fuzz_*.py`) are property-based: Hypothesis draws the
inputs. In CI they run a small, fixed number of examples per target with a
derandomized seed, so a run is bounded in time and repeatable; a long hunt sets
``DIEMCAU_FUZZ_EXAMPLES`` (and ``DIEMCAU_FUZZ_SEED=random`` for new inputs each
run), e.g. through ``scripts/fuzz.sh`` (docs/security-testing.md).
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
    """Examples per target: `ci_default`, or ``DIEMCAU_FUZZ_EXAMPLES`` for a long run."""
    raw = os.environ.get("DIEMCAU_FUZZ_EXAMPLES", "")
    return int(raw) if raw.strip() else ci_default


def fuzz_settings(ci_default: int, *, shrink: bool = True) -> settings:
    """Hypothesis settings of the fuzz tests: bounded, repeatable, no example database.

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
