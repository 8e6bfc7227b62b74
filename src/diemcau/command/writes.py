"""Write transactions for the command center, queued per database on SQLite.

SQLite has a single writer. Thousands of sites filing at once through a
connection pool collide in SQLite's busy handler, which sleeps and retries;
queueing the writers of this process on one asyncio lock instead measured
~180 → many hundreds of reports a second (``bench/command.py``). PostgreSQL
writers run concurrently and rely on row locks.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession

from diemcau.store import Database

__all__ = ["writing"]

_locks: weakref.WeakKeyDictionary[Database, asyncio.Lock] = weakref.WeakKeyDictionary()


@asynccontextmanager
async def writing(db: Database) -> AsyncIterator[AsyncSession]:
    """A session for one write transaction (committed on success)."""
    if not db.is_sqlite:
        async with db.session() as s:
            yield s
        return
    lock = _locks.get(db)
    if lock is None:
        lock = _locks[db] = asyncio.Lock()
    async with lock, db.session() as s:
        yield s
