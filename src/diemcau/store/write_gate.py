"""SQLite writers of this process take their turn in arrival order.

SQLite lets one transaction write at a time. A writer that finds the lock taken
sleeps and polls (its busy handler, with growing pauses) until the lock is free
or its busy timeout ends; a newcomer that polls at the right moment goes first.
Under a sustained burst (ten thousand sites joining a national meeting, the
attendance writer committing batch after batch, the alive mark, the session log)
an early writer can lose every race for ten seconds and fail "database is locked"
although no transaction held the lock for long.

The gate turns that race into a queue for the writers of this process: the first
write statement of a transaction waits on one FIFO lock, held until the
transaction commits or rolls back, so SQLite's own lock is always free when a
writer of this process reaches it. Reads never wait (WAL: they see the last
commit). Writers of other processes (a CLI command on the same file) still meet
SQLite's busy handler. A writer that waits longer than the busy timeout fails as
it did before, with SQLite's words, so callers treat it as an outage and retry
(`store.outage.is_store_outage`).

The wait happens inside SQLAlchemy's own event hook: the async engine runs its
synchronous core in a greenlet of the event loop, where `await_only` may await.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.util.concurrency import await_only, in_greenlet

__all__ = ["SqliteWriteGate"]

_HELD = "diemcau_write_gate"
# Statements that only read; every other statement (INSERT, UPDATE, DELETE,
# REPLACE, CREATE, DROP, ALTER …) writes.
_READS = ("SELECT", "PRAGMA", "EXPLAIN", "SAVEPOINT", "RELEASE")


def _writes(statement: str) -> bool:
    return not statement.lstrip().upper().startswith(_READS)


class SqliteWriteGate:
    """One FIFO turn for the writing transactions of one SQLite engine.

    Args:
        wait_s: how long a writer waits for its turn before it fails like SQLite's
            busy timeout would ("database is locked").
    """

    def __init__(self, wait_s: float) -> None:
        self.wait_s = wait_s
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.turns = 0
        self.timeouts = 0

    def install(self, engine: AsyncEngine) -> None:
        """Hook the gate into `engine`: taken at a transaction's first write, given
        back at its commit or rollback, and in any case when the connection goes
        back to the pool (a transaction cut short by an error)."""
        sync = engine.sync_engine
        event.listen(sync, "before_cursor_execute", self._before_execute)
        event.listen(sync, "commit", self._end)
        event.listen(sync, "rollback", self._end)
        event.listen(sync.pool, "checkin", self._checkin)

    @property
    def held(self) -> bool:
        return self._lock is not None and self._lock.locked()

    def _current_lock(self) -> asyncio.Lock:
        # An asyncio lock belongs to one loop; tests run one loop after another.
        loop = asyncio.get_running_loop()
        if self._lock is None or self._loop is not loop:
            self._lock, self._loop = asyncio.Lock(), loop
        return self._lock

    def _before_execute(
        self,
        conn: Connection,
        _cursor: Any,
        statement: str,
        parameters: Any,
        _context: Any,
        _executemany: bool,
    ) -> None:
        if conn.info.get(_HELD) or not _writes(statement) or not in_greenlet():
            return  # (outside the async engine's greenlet: SQLite's busy handler only)
        lock = self._current_lock()
        try:
            await_only(asyncio.wait_for(lock.acquire(), self.wait_s))
        except TimeoutError:
            self.timeouts += 1
            raise OperationalError(
                statement,
                parameters,
                sqlite3.OperationalError(
                    f"database is locked (no turn to write within {self.wait_s:g} s)"
                ),
            ) from None
        conn.info[_HELD] = lock
        self.turns += 1

    @staticmethod
    def _release(info: dict[Any, Any]) -> None:
        lock = info.pop(_HELD, None)
        if isinstance(lock, asyncio.Lock) and lock.locked():
            lock.release()

    def _end(self, conn: Connection) -> None:
        self._release(conn.info)

    def _checkin(self, _dbapi_conn: object, record: ConnectionPoolEntry) -> None:
        self._release(record.info)
