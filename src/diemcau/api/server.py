"""Run the control server: build the runtime and serve the app with uvicorn.

With TLS settings the certificate is checked before anything else happens (a
bad file stops the server with a one-line `TlsError`, never a plain-text
fallback); the app then listens on HTTPS only, and optionally a second listener
redirects plain HTTP to it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator

import uvicorn

from diemcau.api.app import create_app
from diemcau.api.https_only import https_only, redirect_app
from diemcau.api.standby_guard import standby_guard
from diemcau.config import Settings
from diemcau.runtime import Runtime
from diemcau.standby import Leadership
from diemcau.store.lease import LeaderLease
from diemcau.tls.settings import server_context_for
from diemcau.wiring import build_runtime

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
    tls = server_context_for(settings) is not None  # raises TlsError before any change
    runtime = await build_runtime(settings)
    if settings.lease:
        # One of a standby pair: serve only while holding the lease (docs/reliability.md).
        lease = LeaderLease(runtime.db.url, settings.resolved_public_url())
        leadership = Leadership(runtime, lease)
        app = https_only(standby_guard(create_app(runtime, leadership), leadership))
    else:
        app = https_only(create_app(runtime))
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        lifespan="on",
        ws_max_size=64 * 1024,
        ssl_certfile=settings.tls_cert or None,
        ssl_keyfile=settings.tls_key or None,
    )
    server = uvicorn.Server(config) if stop is None else _CallerOwnsSignals(config)
    task = asyncio.create_task(server.serve())
    redirect: uvicorn.Server | None = None
    if tls and settings.http_redirect_port:
        redirect = uvicorn.Server(
            uvicorn.Config(
                redirect_app(settings.port),
                host=settings.host,
                port=settings.http_redirect_port,
                log_level="warning",
                lifespan="off",
            )
        )
        redirect_task = asyncio.create_task(redirect.serve())
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
        if redirect is not None:
            redirect.should_exit = True
            await redirect_task
        await runtime.db.dispose()
