from __future__ import annotations

from sqlalchemy import inspect

from diemcau.store import Database, migrate


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
