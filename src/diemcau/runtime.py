"""The running control server's shared parts, built once and handed to every layer.

`Runtime` owns the database, the instance key and the long-lived services
(presence hub, meetings, media orchestrator, command center). Packages attach
their service in `build_runtime`; the HTTP app starts and stops them in its
lifespan, so a test that builds the app gets the same wiring as production.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from diemcau.config import Settings
from diemcau.store import Database, migrate

__all__ = ["Runtime", "Lifecycle", "build_runtime"]

Lifecycle = tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]


@dataclass
class Runtime:
    """Shared parts of one control-server process.

    Attributes:
        settings: resolved settings.
        db: the store.
        key: the instance HMAC key (site credentials, tokens).
        clock: wall clock in seconds; tests inject a fake one.
        services: long-lived services by name (``"presence"``, ``"meetings"`` ...).
        lifecycles: (start, stop) pairs run in order at start and reversed at stop.
    """

    settings: Settings
    db: Database
    key: bytes
    clock: Callable[[], float] = time.time
    services: dict[str, Any] = field(default_factory=dict)
    lifecycles: list[Lifecycle] = field(default_factory=list)
    _started: int = 0

    def add_service(
        self,
        name: str,
        service: Any,
        start: Callable[[], Awaitable[None]] | None = None,
        stop: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.services[name] = service
        if start is not None or stop is not None:
            self.lifecycles.append((start or _noop, stop or _noop))

    async def start(self) -> None:
        for start, _ in self.lifecycles[self._started :]:
            await start()
            self._started += 1

    async def stop(self) -> None:
        while self._started:
            self._started -= 1
            _, stop = self.lifecycles[self._started]
            await stop()

    async def close(self) -> None:
        await self.stop()
        await self.db.dispose()


async def _noop() -> None:
    return None


async def build_runtime(settings: Settings, *, clock: Callable[[], float] = time.time) -> Runtime:
    """Migrate the store and assemble every service of the control server."""
    url = settings.resolved_database_url()
    await migrate(url)
    db = Database(url)
    key = await db.secret_key(settings.secret_key)
    runtime = Runtime(settings=settings, db=db, key=key, clock=clock)
    for name in ATTACHERS:
        attach = importlib.import_module(name).attach
        await attach(runtime)
    return runtime


# Modules with an ``async def attach(runtime)`` that adds their long-lived
# service, in dependency order (presence before meetings, media, command; recording last).
ATTACHERS: tuple[str, ...] = (
    "diemcau.presence.runtime",
    "diemcau.meetings.runtime",
    "diemcau.command.runtime",
    "diemcau.media.runtime",
    "diemcau.recording.runtime",
)
