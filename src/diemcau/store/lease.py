"""The leader lease: which of two control servers on one PostgreSQL database may serve.

The lease is a PostgreSQL session advisory lock (`pg_try_advisory_lock`) held on a
connection of its own, kept open and pinged. Nothing new to run: the database that
both servers need anyway is the referee.

- The server that takes the lock serves; the other tries again every `poll_s`.
- A server that dies (``kill -9``, a host lost) drops its connection; PostgreSQL ends
  the backend and frees the lock at once when the socket closes, or within
  `KEEPALIVE_S` when the host vanished without closing it (TCP keepalives set on the
  backend), and the other server takes it.
- The holder pings its connection every `check_s`. When it cannot confirm the lock
  for `timeout_s` (its database unreachable), or learns that another server holds it,
  the lease is lost: the holder must stop serving at once. `timeout_s` is shorter
  than `KEEPALIVE_S`, so a holder cut off from the database stops before PostgreSQL
  lets the other server take over: never two servers serving (docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url

from diemcau.store.urls import database_url

if TYPE_CHECKING:
    import asyncpg

__all__ = ["KEEPALIVE_S", "LEASE_KEY", "LeaderLease", "LeaseLost", "asyncpg_params"]


def _unreachable() -> tuple[type[BaseException], ...]:
    """What says the database cannot be reached. Called by an ``except`` clause only
    when an exception is matched, so a SQLite server never loads the PostgreSQL driver."""
    import asyncpg

    return (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


log = logging.getLogger(__name__)

# The advisory lock's key ("diemcau" in ASCII); locks are per database.
LEASE_KEY = 0x6469656D636175
# PostgreSQL notices a holder's host gone within about this (idle 4 s, 3 probes 1 s apart).
KEEPALIVE_S = 7.0
_APP_PREFIX = "diemcau leader "


class LeaseLost(Exception):
    """The lease is no longer this server's; the message says why."""


def asyncpg_params(url: str) -> dict[str, str | int | None]:
    """``asyncpg.connect`` keywords for a PostgreSQL URL (any form `database_url` takes)."""
    u = make_url(database_url(url))
    if not u.drivername.startswith("postgresql"):
        raise ValueError("the leader lease needs PostgreSQL (DIEMCAU_DB=postgresql://...)")
    host = u.query.get("host") or u.host
    return {
        "user": u.username,
        "password": u.password,
        "host": host if isinstance(host, str) else None,
        "port": u.port,
        "database": u.database,
    }


@dataclass
class LeaderLease:
    """Take, keep and give back the lease for the database at `url`.

    Args:
        url: the servers' PostgreSQL database.
        name: how this server is named to the other (its public URL), shown by `holder`.
        poll_s: how often a waiting server tries to take the lease.
        check_s: how often the holder pings its lease connection.
        timeout_s: how long the holder may go without confirming the lease.
    """

    url: str
    name: str
    poll_s: float = 0.5
    check_s: float = 0.5
    timeout_s: float = 4.0

    def __post_init__(self) -> None:
        self._params = asyncpg_params(self.url)
        self._conn: asyncpg.Connection | None = None
        # One statement at a time on the lease connection: `holder` (asked by the API
        # while this server stands by) must not run into `take`'s attempt on it.
        self._lock = asyncio.Lock()
        self.held = False

    async def _connect(self) -> asyncpg.Connection:
        import asyncpg  # a SQLite server never loads the PostgreSQL driver

        conn: asyncpg.Connection = await asyncpg.connect(
            **self._params,
            timeout=min(2.0, self.timeout_s),
            server_settings={
                "application_name": (_APP_PREFIX + self.name)[:63],
                # The backend notices a vanished peer (a host lost) and frees the lock.
                "tcp_keepalives_idle": "4",
                "tcp_keepalives_interval": "1",
                "tcp_keepalives_count": "3",
                # ... also when a reply to it was in flight (retransmissions).
                "tcp_user_timeout": str(int(KEEPALIVE_S * 1000)),
            },
        )
        return conn

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 1.0)
            if not conn.is_closed():
                conn.terminate()

    async def try_take(self) -> bool:
        """One attempt: True when this server now holds the lease (False: another does).

        Raises:
            OSError, asyncpg.PostgresError, TimeoutError: the database cannot be reached.
        """
        if self.held:
            return True
        async with self._lock:
            if self._conn is None or self._conn.is_closed():
                await self._close()
                self._conn = await self._connect()
            got = await asyncio.wait_for(
                self._conn.fetchval("SELECT pg_try_advisory_lock($1)", LEASE_KEY), self.timeout_s
            )
        self.held = bool(got)
        return self.held

    async def take(self) -> None:
        """Wait until this server holds the lease (tries every `poll_s`)."""
        reported = False
        while True:
            try:
                if await self.try_take():
                    log.warning("leader lease taken: this server serves now")
                    return
            except _unreachable() as exc:
                if not reported:
                    log.warning("leader lease: the database cannot be reached (%s)", exc)
                    reported = True
                await self._close()
            await asyncio.sleep(self.poll_s)

    async def _confirm(self) -> None:
        """Ping the lease connection; if it broke, take the lock again on a new one."""
        conn = self._conn
        if conn is not None and not conn.is_closed():
            try:
                async with self._lock:
                    await asyncio.wait_for(conn.fetchval("SELECT 1"), self.check_s + 1.0)
                return
            except _unreachable():
                pass
        # The connection (and with it the lock) is gone: PostgreSQL restarted, or the
        # connection was cut. Take the lock again unless another server has it by now.
        self.held = False
        await self._close()
        if not await self.try_take():
            raise LeaseLost("another server took the leader lease")

    async def keep(self) -> None:
        """Hold the lease until it is lost; raises `LeaseLost` saying why.

        Never more than `timeout_s` pass between the last confirmation and the loss
        being declared, however the database misbehaves meanwhile.
        """
        if not self.held:
            raise LeaseLost("the lease is not held")
        confirmed = time.monotonic()
        while True:
            await asyncio.sleep(self.check_s)
            left = self.timeout_s - (time.monotonic() - confirmed)
            try:
                await asyncio.wait_for(self._confirm(), max(0.1, left))
                confirmed = time.monotonic()
            except LeaseLost:
                self.held = False
                raise
            except _unreachable() as exc:
                gone = time.monotonic() - confirmed
                if gone >= self.timeout_s:
                    self.held = False
                    await self._close()
                    raise LeaseLost(
                        f"the lease could not be confirmed for {gone:.1f} s "
                        f"({type(exc).__name__}: {exc})"
                    ) from exc

    async def holder(self) -> str | None:
        """The name of the server holding the lease now (None: nobody, or unknown)."""

        query = (
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a "
            "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
            "AND l.classid = $1 AND l.objid = $2 LIMIT 1"
        )

        async def ask() -> object:
            async with self._lock:
                conn = self._conn
                if conn is None or conn.is_closed():
                    return None
                return await conn.fetchval(query, LEASE_KEY >> 32, LEASE_KEY & 0xFFFFFFFF)

        try:
            name = await asyncio.wait_for(ask(), 2.0)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # unknown is an answer: the caller names no server
            log.debug("leader lease: the holder could not be read (%r)", exc)
            return None
        if isinstance(name, str) and name.startswith(_APP_PREFIX):
            return name[len(_APP_PREFIX) :]
        return None

    async def release(self) -> None:
        """Give the lease back (closing the connection frees the lock)."""
        self.held = False
        await self._close()
