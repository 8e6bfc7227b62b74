"""The check that a store holds a directory, with the message that says how to load one.

Provisioning, serving, planning relays, simulating sites or importing reports on a
store without sites does nothing useful and looked like success ("issued 0 site
credentials"); the commands call `require_directory` first and refuse in one line.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from diemcau.errors import Conflict
from diemcau.store import Database
from diemcau.store.models import Site
from diemcau.store.urls import safe_url

__all__ = ["LOAD_HINT", "EmptyDirectory", "has_sites", "require_directory"]

LOAD_HINT = (
    "load it first: diemcau directory load --db {url} --dataset vn-2025 "
    "(or vn-legacy, south-19, or --csv FILE: see docs/directory.md)"
)


class EmptyDirectory(Conflict):
    """The store has no site: the directory was never loaded into it."""

    code = "empty_directory"


def _no_table(exc: DBAPIError) -> bool:
    """A store never migrated has no ``sites`` table (SQLite's message, SQLSTATE 42P01)."""
    orig = exc.orig
    cause = getattr(orig, "__cause__", None)
    state = getattr(orig, "sqlstate", None) or getattr(cause, "sqlstate", None)
    return state == "42P01" or "no such table" in str(orig)


async def has_sites(db: Database) -> bool:
    """Whether the store holds at least one site (a store never migrated holds none)."""
    try:
        async with db.session() as s:
            return (await s.scalar(select(Site.id).limit(1))) is not None
    except DBAPIError as exc:
        if _no_table(exc):
            return False
        raise


async def require_directory(db: Database) -> None:
    """Raise `EmptyDirectory` naming the store when it holds no site."""
    if not await has_sites(db):
        url = safe_url(db.url)
        raise EmptyDirectory(f"the directory in {url} is empty; " + LOAD_HINT.format(url=url))
