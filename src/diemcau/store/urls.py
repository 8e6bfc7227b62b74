"""Database URLs as people type them, turned into the async-driver URL the store runs on.

SQLAlchemy's and Alembic's documentation show ``sqlite:///x.db`` and
``postgresql://user@host/db``; the store runs on asyncio drivers only
(aiosqlite, asyncpg), so every entry point (the CLI, the settings, the
migrations) passes its URL through `database_url` first. Anything that is not
SQLite or PostgreSQL is refused in one line that says which URLs work.
"""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from diemcau.errors import Invalid

__all__ = ["ACCEPTED", "UnsupportedDatabaseURL", "database_url", "safe_url"]

ACCEPTED = (
    "sqlite:///PATH.db (or sqlite+aiosqlite:///PATH.db) and "
    "postgresql://USER:PASSWORD@HOST:PORT/DBNAME (or postgres://, postgresql+asyncpg://)"
)

# backend -> (drivers a user may name, the async driver the store uses)
_BACKENDS: dict[str, tuple[frozenset[str], str]] = {
    "sqlite": (frozenset({"", "aiosqlite"}), "sqlite+aiosqlite"),
    "postgresql": (frozenset({"", "asyncpg"}), "postgresql+asyncpg"),
    "postgres": (frozenset({"", "asyncpg"}), "postgresql+asyncpg"),
}


class UnsupportedDatabaseURL(Invalid):
    """A database URL of a kind the store cannot run on."""

    code = "bad_database_url"


def _parse(raw: str) -> URL:
    text = raw.strip()
    if "://" not in text:
        hint = f" (for a file: sqlite:///{text})" if text else ""
        raise UnsupportedDatabaseURL(f"not a database URL: {text!r}{hint}; use {ACCEPTED}")
    try:
        return make_url(text)
    except (ArgumentError, ValueError):
        scheme = text.split("://", 1)[0]
        raise UnsupportedDatabaseURL(
            f"cannot read the database URL {scheme}://…; use {ACCEPTED}"
        ) from None


def database_url(raw: str) -> str:
    """`raw` with the async driver named: ``sqlite:///x.db`` -> ``sqlite+aiosqlite:///x.db``.

    Raises:
        UnsupportedDatabaseURL: not SQLite or PostgreSQL, or another driver named.
    """
    url = _parse(raw)
    backend, _, driver = url.drivername.partition("+")
    accepted = _BACKENDS.get(backend)
    if accepted is None or driver not in accepted[0]:
        raise UnsupportedDatabaseURL(
            f"unsupported database URL {url.drivername}://…; use {ACCEPTED}"
        )
    return url.set(drivername=accepted[1]).render_as_string(hide_password=False)


def safe_url(raw: str) -> str:
    """`raw` with any password masked, for messages and logs."""
    try:
        return make_url(raw.strip()).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "<unreadable URL>"
