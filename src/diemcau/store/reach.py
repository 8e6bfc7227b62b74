"""Why a store cannot be opened, in one line that says what to check.

A PostgreSQL server that is down, a wrong password, a missing database or an
SQLite path that cannot be written surface from the drivers as a
``ConnectionRefusedError``, a ``socket.gaierror`` or an ``OperationalError`` deep in
a traceback. `watch_connects` turns those failures, at the moment a connection is
opened (never later, so an error inside a unit of work keeps its own meaning),
into `StoreUnavailable` with a message naming what could not be reached and what
to check. Every command prints that message; the HTTP API keeps it in its log
(it names hosts and users, which are not for clients).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry

__all__ = ["StoreUnavailable", "exception_chain", "explain", "folder_failure", "watch_connects"]

_PG_HELP = "scripts/postgres.sh starts a local server"


class StoreUnavailable(Exception):
    """The store named by a URL cannot be opened; the message says what to check."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, the driver error it wraps (``.orig``) and its causes, each once."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for nxt in (getattr(current, "orig", None), current.__cause__, current.__context__):
            if isinstance(nxt, BaseException):
                todo.append(nxt)


def _where(url: URL) -> str:
    """``host:port`` of a PostgreSQL URL (a Unix socket folder as host)."""
    host = url.host or str(url.query.get("host", "") or "") or "localhost"
    port = f":{url.port}" if url.port else ("" if host.startswith("/") else ":5432")
    return f"{host}{port}"


def _who(url: URL) -> str:
    """`` (database 'db', user 'u')``, or nothing if the URL names neither."""
    who = [f"database {url.database!r}"] if url.database else []
    if url.username:
        who.append(f"user {url.username!r}")
    return f" ({', '.join(who)})" if who else ""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, socket.gaierror):
        return "unknown host name"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, FileNotFoundError):
        return "no server socket there"
    return exc.strerror or _first_line(exc)


def _postgres(url: URL, exc: BaseException) -> StoreUnavailable | None:
    where = _where(url) + _who(url)
    for link in exception_chain(exc):
        state = getattr(link, "sqlstate", None)
        if state in ("28P01", "28000"):
            return StoreUnavailable(
                f"PostgreSQL at {where} refused the login ({_first_line(link)}); "
                "check the user name and password in the database URL"
            )
        if state == "3D000":
            return StoreUnavailable(
                f"PostgreSQL at {where}: the database does not exist; "
                f"create it or fix the name in the database URL ({_PG_HELP} and "
                "its diemcau_test database)"
            )
        if state in ("57P03", "53300"):
            return StoreUnavailable(
                f"PostgreSQL at {where} does not accept connections now ({_first_line(link)}); "
                "try again later or check the server's log"
            )
        if isinstance(link, OSError | TimeoutError):
            reason = _os_reason(link) if isinstance(link, OSError) else "timed out"
            return StoreUnavailable(
                f"cannot reach PostgreSQL at {_where(url)}: {reason}; check the host and port "
                f"in the database URL, that the server runs and accepts this host ({_PG_HELP})"
            )
    return None


def _sqlite(url: URL, exc: BaseException) -> StoreUnavailable | None:
    path = url.database or ":memory:"
    for link in exception_chain(exc):
        text = _first_line(link)
        if "unable to open database file" in text:
            return StoreUnavailable(
                f"cannot open the SQLite database {path} ({text}); "
                "check that its folder exists and is writable"
            )
        if "file is not a database" in text:
            return StoreUnavailable(
                f"{path} is not an SQLite database; name a new file or the right one"
            )
        if "readonly database" in text or "read-only" in text:
            return StoreUnavailable(
                f"the SQLite database {path} is read-only; "
                "check the permissions of the file and its folder"
            )
        if "disk i/o error" in text.lower():
            return StoreUnavailable(
                f"cannot write the SQLite database {path} ({text}); check the disk and folder"
            )
    return None


def explain(url: str, exc: BaseException) -> StoreUnavailable | None:
    """The one-line reason the store at `url` cannot be opened, if `exc` is one."""
    if isinstance(exc, StoreUnavailable):
        return exc
    try:
        parsed = make_url(url)
    except Exception:
        return None
    if parsed.drivername.startswith("sqlite"):
        return _sqlite(parsed, exc)
    if parsed.drivername.startswith("postgres"):
        return _postgres(parsed, exc)
    return None


def folder_failure(path: Path, exc: OSError) -> StoreUnavailable:
    """The SQLite file's folder cannot be made (a file in the way, no permission)."""
    reason = exc.strerror or _first_line(exc)
    if isinstance(exc, FileExistsError | NotADirectoryError):
        reason = "a file is in the way"
    return StoreUnavailable(
        f"cannot create the folder {path.parent} for the SQLite database {path} ({reason}); "
        "check the path and its permissions"
    )


def watch_connects(engine: AsyncEngine, url: str) -> None:
    """Make a failed connection of `engine` raise `StoreUnavailable` (when recognised).

    SQLAlchemy's ``do_connect`` event lets a listener open the connection itself; this
    one opens it as the pool would and translates the failure.
    """

    @event.listens_for(engine.sync_engine, "do_connect")
    def _connect(
        dialect: Dialect,
        _record: ConnectionPoolEntry,
        cargs: tuple[object, ...],
        cparams: dict[str, object],
    ) -> DBAPIConnection:
        try:
            return dialect.connect(*cargs, **cparams)
        except Exception as exc:
            failure = explain(url, exc)
            if failure is None:
                raise
            raise failure from exc
