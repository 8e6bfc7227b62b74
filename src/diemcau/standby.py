"""A control server's role in a standby pair: serve while it holds the lease, else wait.

Two ``diemcau serve --lease`` processes share one PostgreSQL database. Each answers
HTTP from the start (its health says ``standby``, its API refuses with 503 and names
the active server), but only the one holding the leader lease (`store.lease`) starts
the services: the site socket, meetings, the command center, the media plane, which
re-declares the running programs and reconciles the nodes, exactly as after a restart.

A server that loses the lease stops serving at once by ending its process (exit
status `EXIT_LEASE_LOST`), without writing a word to the store: another server holds
the lease by then, and a goodbye written now (sessions closed "server_shutdown",
attendance closed "server_stop") would contradict what that server records. Its sites
were already told to go elsewhere by their sockets closing. A service manager starts
it again, as the new standby (docs/reliability.md, docs/deploy.md).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Literal

from diemcau.runtime import Runtime
from diemcau.store.lease import LeaderLease, LeaseLost

__all__ = ["EXIT_LEASE_LOST", "Leadership", "Role", "exit_now"]

log = logging.getLogger(__name__)

# The exit status of a server that lost its lease (EX_TEMPFAIL: start it again).
EXIT_LEASE_LOST = 75

Role = Literal["standby", "starting", "active", "stopping"]

# How long the name of the active server is reused before asking the database again.
_HOLDER_CACHE_S = 1.0


def exit_now(reason: str) -> None:
    """End this process at once, writing nothing more (the lease is another's)."""
    log.critical("leader lease lost (%s): this server stops serving now", reason)
    sys.stderr.flush()
    os._exit(EXIT_LEASE_LOST)


class Leadership:
    """Starts the runtime once the lease is held; ends the process when it is lost.

    Args:
        runtime: the services this server runs when it serves (not started yet).
        lease: the leader lease on the servers' database.
        on_lost: what to do when the lease is lost (default: `exit_now`); tests pass
            their own to watch it happen.
    """

    def __init__(
        self,
        runtime: Runtime,
        lease: LeaderLease,
        *,
        on_lost: Callable[[str], None] = exit_now,
    ) -> None:
        self.runtime = runtime
        self.lease = lease
        self.on_lost = on_lost
        self.role: Role = "standby"
        self.serving_since: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._holder: tuple[float, str | None] = (0.0, None)

    @property
    def active(self) -> bool:
        return self.role == "active"

    def start(self) -> None:
        """Begin waiting for the lease (in the background)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="leader-lease")

    async def _run(self) -> None:
        await self.lease.take()
        self.role = "starting"
        started = time.monotonic()
        try:
            await self.runtime.start()
        except Exception as exc:
            log.exception("the services did not start on taking the lease")
            self.on_lost(f"start failed: {exc!r}")
            return
        self.role = "active"
        self.serving_since = time.time()
        took = time.monotonic() - started
        log.warning("serving: services started %.1f s after taking the lease", took)
        try:
            await self.lease.keep()
        except LeaseLost as exc:
            self.role = "stopping"
            self.on_lost(str(exc))

    async def active_server(self) -> str | None:
        """The name (public URL) of the server holding the lease, asked at most once a second."""
        if self.active:
            return self.lease.name
        at, name = self._holder
        if time.monotonic() - at > _HOLDER_CACHE_S:
            name = await self.lease.holder()
            self._holder = (time.monotonic(), name)
        return name

    async def stop(self) -> None:
        """Stop waiting or serving (an orderly stop), then give the lease back."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        was = self.role
        self.role = "stopping"
        if was in ("active", "starting"):
            await self.runtime.stop()
        await self.lease.release()
