"""Run the control server: build the runtime and serve the app with uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator

import uvicorn

from diemcau.api.app import create_app
from diemcau.config import Settings
from diemcau.runtime import Runtime, build_runtime

__all__ = ["serve"]


class _CallerOwnsSignals(uvicorn.Server):
    """A server that leaves SIGINT/SIGTERM to its caller, who ends it through `stop`.

    uvicorn otherwise starts its own shutdown on Ctrl-C at once, racing the caller's
    (the demo lets its simulated sites leave while the server still answers them).
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(
    settings: Settings,
    *,
    on_ready: Callable[[Runtime], Awaitable[None]] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until interrupted (or until `stop` is set).

    Args:
        settings: where to bind and which store to use.
        on_ready: awaited once the HTTP port accepts connections (the demo uses it
            to start simulated sites).
        stop: an event that ends the server gracefully when set; with it, the caller
            handles SIGINT/SIGTERM (uvicorn does not).
    """
    runtime = await build_runtime(settings)
    app = create_app(runtime)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        lifespan="on",
        ws_max_size=64 * 1024,
    )
    server = uvicorn.Server(config) if stop is None else _CallerOwnsSignals(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                await task
                return
            await asyncio.sleep(0.02)
        if on_ready is not None:
            await on_ready(runtime)
        if stop is not None:
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            server.should_exit = True
        await task
    finally:
        if not task.done():
            server.should_exit = True
            await task
        await runtime.db.dispose()
