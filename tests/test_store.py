from __future__ import annotations

import subprocess
import sys

from sqlalchemy import inspect, text

from diemcau.store import Database, migrate
from diemcau.store.db import _head_revisions


async def test_migrations_create_core_tables_and_are_repeatable(any_db_url: str) -> None:
    await migrate(any_db_url)
    await migrate(any_db_url)  # a second run is a no-op, not an error
    db = Database(any_db_url)
    try:
        async with db.engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert {"units", "sites", "staff_users", "settings", "alembic_version"} <= tables
    finally:
        await db.dispose()


async def test_instance_secret_is_generated_once_and_kept(any_db_url: str) -> None:
    await migrate(any_db_url)
    first = Database(any_db_url)
    key = await first.secret_key()
    await first.dispose()
    second = Database(any_db_url)
    try:
        assert await second.secret_key() == key
        assert len(key) == 64
        assert await second.secret_key("override") == b"override"
    finally:
        await second.dispose()


async def test_a_store_at_every_head_is_not_migrated_and_one_behind_is(sqlite_url: str) -> None:
    """The server starts on a migrated store without loading alembic (~11 MB of memory);
    a store missing a head is still upgraded (tried: the presence head's record and
    tables removed)."""
    await migrate(sqlite_url)
    probe = (
        "import asyncio, sys\n"
        "from diemcau.store import migrate\n"
        f"asyncio.run(migrate({sqlite_url!r}))\n"
        "print('alembic' in sys.modules)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert run.stdout.split() == ["False"], run.stderr
    presence = ("presence_events", "presence_messages", "presence_follows")
    db = Database(sqlite_url)
    try:
        async with db.session() as s:
            await s.execute(text("DELETE FROM alembic_version WHERE version_num = 'presence_0001'"))
            for table in presence:
                await s.execute(text(f"DROP TABLE {table}"))
        await migrate(sqlite_url)  # presence_0001 is not recorded: upgraded again
        async with db.engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            rows = await conn.execute(text("SELECT version_num FROM alembic_version"))
            versions = set(rows.scalars())
        assert set(presence) <= tables
        assert versions == _head_revisions() and "presence_0001" in versions
    finally:
        await db.dispose()
