"""Shared fixtures: the isolated network namespace, and fresh SQLite/PostgreSQL stores."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from diemcau.media.isolation import enter_isolated_netns
from diemcau.store import Database, migrate

PG_URL = os.environ.get(
    "DIEMCAU_TEST_PG",
    "postgresql+asyncpg://diemcau:diemcau@/diemcau_test?host=/var/run/postgresql",
)


def pytest_configure(config: pytest.Config) -> None:
    # Every test runs inside a private network namespace (docs/media.md): Janus,
    # the control server, bots and Chromium talk over loopback addresses only,
    # and nothing can leave the machine. PostgreSQL is reached over its Unix socket.
    if os.geteuid() == 0 and not os.environ.get("DIEMCAU_TEST_HOST_NETNS"):
        enter_isolated_netns()


def _pg_connect_kwargs(url: str) -> dict[str, object]:
    u = make_url(url)
    return {
        "user": u.username,
        "password": u.password,
        "host": u.query.get("host") or u.host,
        "port": u.port,
        "database": u.database,
    }


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A brand-new, empty PostgreSQL database, dropped afterwards."""
    name = f"diemcau_t_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(**_pg_connect_kwargs(PG_URL))  # type: ignore[arg-type]
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    await _drop_database(name)


async def _drop_database(name: str) -> None:
    """Drop a test database, waiting out a backend the test role may not terminate.

    ``WITH (FORCE)`` refuses while a backend of another role (an autovacuum worker
    finishing on the new database) is attached; it leaves within moments.
    """
    admin = await asyncpg.connect(**_pg_connect_kwargs(PG_URL))  # type: ignore[arg-type]
    try:
        for attempt in range(50):
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                return
            except asyncpg.InsufficientPrivilegeError:
                if attempt == 49:
                    raise
                await asyncio.sleep(0.1)
    finally:
        await admin.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'diemcau.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
async def any_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Each test using this runs twice: on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'diemcau.db'}"
    else:
        async for url in pg_url.__wrapped__():  # type: ignore[attr-defined]
            yield url


@pytest.fixture
async def db(sqlite_url: str) -> AsyncIterator[Database]:
    """A migrated SQLite store."""
    await migrate(sqlite_url)
    database = Database(sqlite_url)
    yield database
    await database.dispose()


@pytest.fixture
async def any_db(any_db_url: str) -> AsyncIterator[Database]:
    """A migrated store, once on SQLite and once on PostgreSQL."""
    await migrate(any_db_url)
    database = Database(any_db_url)
    yield database
    await database.dispose()
