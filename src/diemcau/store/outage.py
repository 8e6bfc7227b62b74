"""Whether an error from a store call means the store is out of reach for now.

A PostgreSQL server restarting, a connection cut under a pool, a pool with no
connection to lend, SQLite held by another writer past its busy timeout: the
change itself was fine and may succeed a moment later, so callers answer "try
again" (HTTP 503 ``store_unavailable``) or queue it for a retry, instead of
treating it as this change's own fault (a refused value, a broken constraint)
that a retry can never fix (docs/reliability.md).
"""

from __future__ import annotations

from sqlalchemy import exc as sa_exc

from diemcau.store.reach import StoreUnavailable, exception_chain

__all__ = ["is_store_outage"]

# SQLSTATE classes and codes of a server that cannot serve now: connection exceptions
# (08), insufficient resources (53), operator intervention (57: admin shutdown, crash
# shutdown, cannot connect now).
_OUTAGE_STATES = ("08", "53", "57P")

# SQLite's words for a database another writer holds or that cannot be read now.
_SQLITE_BUSY = ("database is locked", "database table is locked", "disk i/o error")


def is_store_outage(exc: BaseException) -> bool:
    """True when `exc` (or what it wraps) says the store cannot serve now, not "bad change"."""
    for link in exception_chain(exc):
        if isinstance(link, StoreUnavailable | sa_exc.TimeoutError | sa_exc.InterfaceError):
            return True
        if isinstance(link, sa_exc.DBAPIError) and link.connection_invalidated:
            return True
        if isinstance(link, sa_exc.IntegrityError | sa_exc.DataError):
            return False
        if isinstance(link, OSError):  # refused, reset, timed out (TimeoutError included)
            return True
        state = getattr(link, "sqlstate", None)
        if isinstance(state, str) and state.startswith(_OUTAGE_STATES):
            return True
        if type(link).__name__ in ("ConnectionDoesNotExistError", "InterfaceError"):
            return True
        if isinstance(link, sa_exc.OperationalError):
            text = str(link.orig if link.orig is not None else link).lower()
            if any(words in text for words in _SQLITE_BUSY):
                return True
    return False
