"""Async engines for SQLite (embedded default, WAL) and PostgreSQL, plus migrations.

Every URL passes through `store.urls.database_url` (``sqlite:///x.db`` and
``postgresql://...`` name their async driver), and every engine reports a
connection that cannot be opened as `store.reach.StoreUnavailable`.
"""

from __future__ import annotations

import ast
import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import event, inspect, select, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from diemcau.store.models import SettingValue
from diemcau.store.reach import explain, folder_failure, watch_connects
from diemcau.store.urls import database_url
from diemcau.store.write_gate import SqliteWriteGate

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["Database", "migrate", "alembic_config", "create_engine"]

_MIGRATIONS = Path(__file__).parent / "migrations"

# The advisory lock that serialises migrations of one PostgreSQL database ("migrate").
MIGRATE_KEY = 0x6D696772617465

# A PostgreSQL host that drops packets would otherwise hold a command for asyncpg's
# default 60 s before it can say the server is unreachable.
PG_CONNECT_TIMEOUT_S = 10

# How long a SQLite writer waits for the lock (SQLite's busy timeout, and the turn
# of this process's writers, `store.write_gate`) before it fails "database is locked".
SQLITE_BUSY_TIMEOUT_S = 10


def _sqlite_pragmas(url: str) -> Callable[[DBAPIConnection, ConnectionPoolEntry], None]:
    def run(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        cur = dbapi_conn.cursor()
        try:
            # The first statement on a file that is not a database (or cannot be written)
            # fails here, at connect time: say so in one line like any other open failure.
            cur.execute("PRAGMA journal_mode=WAL")
        except Exception as exc:
            failure = explain(url, exc)
            if failure is None:
                raise
            raise failure from exc
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        cur.close()

    return run


def _prepare_sqlite_path(url: str) -> None:
    parsed = make_url(url)
    if parsed.database and parsed.database != ":memory:":
        path = Path(parsed.database)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise folder_failure(path, exc) from exc


def create_engine(url: str, **kwargs: object) -> AsyncEngine:
    """An async engine for `url` (any accepted form) that reports failed connects clearly.

    Raises:
        store.urls.UnsupportedDatabaseURL: neither SQLite nor PostgreSQL.
        store.reach.StoreUnavailable: the SQLite file's folder cannot be made.
    """
    url = database_url(url)
    if url.startswith("sqlite"):
        _prepare_sqlite_path(url)
    else:
        given = kwargs.get("connect_args")
        kwargs["connect_args"] = {
            "timeout": PG_CONNECT_TIMEOUT_S,
            **(given if isinstance(given, dict) else {}),
        }
    engine = create_async_engine(url, **kwargs)
    watch_connects(engine, url)
    if url.startswith("sqlite"):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas(url))
    return engine


class Database:
    """One engine and session factory for a database URL.

    Use ``async with db.session() as s:`` for a unit of work (committed on success).
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = database_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        kwargs: dict[str, object] = {"echo": echo}
        if not self.is_sqlite:
            kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        self.engine: AsyncEngine = create_engine(self.url, **kwargs)
        # SQLite: this process's writers take turns instead of racing for the lock.
        self.write_gate: SqliteWriteGate | None = None
        if self.is_sqlite:
            self.write_gate = SqliteWriteGate(SQLITE_BUSY_TIMEOUT_S)
            self.write_gate.install(self.engine)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        self._keys: dict[str, bytes] = {}

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker() as s:
            try:
                yield s
                await s.commit()
            except BaseException:
                await s.rollback()
                raise

    async def secret_key(self, override: str = "") -> bytes:
        """The historical instance key: `override` if given, else generated once and stored.

        It keys the site-secret digests unless a site key is configured
        (`diemcau.instance_keys`).
        """
        if override:
            return override.encode()
        return await self.stored_key("secret_key")

    async def stored_key(self, name: str) -> bytes:
        """A random key kept in the settings table under `name` (generated once)."""
        cached = self._keys.get(name)
        if cached is not None:
            return cached
        async with self.session() as s:
            row = await s.get(SettingValue, name)
            if row is None:
                row = SettingValue(key=name, value=secrets.token_hex(32))
                s.add(row)
            value = row.value
        # Re-read in case a concurrent writer won the insert race.
        async with self.session() as s:
            stored = await s.scalar(select(SettingValue.value).where(SettingValue.key == name))
        key = (stored or value).encode()
        self._keys[name] = key
        return key

    async def dispose(self) -> None:
        await self.engine.dispose()


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    url = database_url(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _upgrade(connection: Connection, url: str) -> None:
    from alembic import command

    if connection.dialect.name == "postgresql":
        # Two servers of a standby pair may start together on one database: the second
        # waits here, then finds the schema current (held until this transaction ends).
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATE_KEY})
    cfg = alembic_config(url)
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "heads")


def _head_revisions() -> set[str]:
    """Every migration head, read from the scripts' text without importing them or alembic."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (_MIGRATIONS / "versions").glob("*.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value = node.targets[0], node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                target, value = node.target, node.value
            else:
                continue
            if not isinstance(target, ast.Name):
                continue
            if target.id == "revision":
                revisions.add(str(ast.literal_eval(value)))
            elif target.id == "down_revision":
                down = ast.literal_eval(value)
                parents.update(down if isinstance(down, tuple | list) else [down] if down else [])
    return revisions - parents


def _at_heads(connection: Connection) -> bool:
    if not inspect(connection).has_table("alembic_version"):
        return False
    rows = connection.execute(text("SELECT version_num FROM alembic_version"))
    stored = {str(row[0]) for row in rows}
    return stored == _head_revisions()


async def migrate(url: str) -> None:
    """Bring the database at `url` to the newest schema (all migration heads).

    A store already at every head is left alone without loading alembic: the control
    server starts on a migrated store almost always, and alembic costs it ~11 MB of
    resident memory for nothing (docs/performance.md).
    """
    url = database_url(url)
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            if not await conn.run_sync(_at_heads):
                await conn.run_sync(_upgrade, url)
    finally:
        await engine.dispose()


def migrate_sync(url: str) -> None:
    asyncio.run(migrate(url))
