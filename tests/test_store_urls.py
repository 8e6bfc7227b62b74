"""Database URLs as people type them, and stores that cannot be opened, said in one line.

Bad inputs tried: MySQL, Oracle and psycopg2 URLs, a bare file name, an empty
string, a URL that cannot be parsed; a PostgreSQL port nobody listens on, a wrong
password, a database that does not exist; an SQLite path under a regular file, a
file that is not a database, a folder where no file can be created (/proc).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from diemcau.store import Database, migrate
from diemcau.store.db import alembic_config
from diemcau.store.reach import StoreUnavailable
from diemcau.store.urls import ACCEPTED, UnsupportedDatabaseURL, database_url, safe_url
from tests.conftest import PG_URL


@pytest.mark.parametrize(
    ("given", "wanted"),
    [
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("sqlite:////abs/x.db", "sqlite+aiosqlite:////abs/x.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("sqlite://", "sqlite+aiosqlite://"),
        ("postgresql://u:p@h:5433/d", "postgresql+asyncpg://u:p@h:5433/d"),
        ("postgres://u:p@h/d", "postgresql+asyncpg://u:p@h/d"),
        ("postgresql+asyncpg://u@/d?host=/run/pg", "postgresql+asyncpg://u@/d?host=%2Frun%2Fpg"),
        ("  postgresql://u:p%40ss@h/d  ", "postgresql+asyncpg://u:p%40ss@h/d"),
    ],
)
def test_accepted_forms_name_the_async_driver(given: str, wanted: str) -> None:
    assert database_url(given) == wanted
    assert make_url(database_url(given)).password == make_url(given.strip()).password


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("mysql://root@127.0.0.1/d", "unsupported database URL mysql://…"),
        ("oracle+cx_oracle://u:p@h/d", "unsupported database URL oracle+cx_oracle://…"),
        ("postgresql+psycopg2://u:p@h/d", "unsupported database URL postgresql+psycopg2://…"),
        ("sqlite+pysqlite:///x.db", "unsupported database URL sqlite+pysqlite://…"),
        ("var/x.db", "not a database URL: 'var/x.db' (for a file: sqlite:///var/x.db)"),
        ("", "not a database URL: ''"),
        ("postgresql://u:secret@h:notaport/d", "cannot read the database URL postgresql://…"),
    ],
)
def test_other_urls_are_refused_naming_what_works(given: str, says: str) -> None:
    with pytest.raises(UnsupportedDatabaseURL) as caught:
        database_url(given)
    message = caught.value.message
    assert says in message and ACCEPTED in message
    assert "\n" not in message and "secret" not in message


def test_every_entry_point_uses_the_normalised_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert Database(url).url == f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    assert str(alembic_config(url).get_main_option("sqlalchemy.url")).startswith(
        "sqlite+aiosqlite:"
    )
    with pytest.raises(UnsupportedDatabaseURL):
        Database("mysql://h/d")
    with pytest.raises(UnsupportedDatabaseURL):
        alembic_config("mysql://h/d")


async def test_plain_sqlite_url_migrates_and_opens(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'plain.db'}"
    await migrate(url)
    db = Database(url)
    try:
        async with db.session() as s:
            assert await s.scalar(text("select count(*) from sites")) == 0
    finally:
        await db.dispose()


@pytest.mark.pg
async def test_plain_postgres_urls_migrate_and_open(pg_url: str) -> None:
    for plain in (
        pg_url.replace("postgresql+asyncpg://", "postgresql://"),
        pg_url.replace("postgresql+asyncpg://", "postgres://"),
    ):
        await migrate(plain)
        db = Database(plain)
        try:
            async with db.session() as s:
                assert await s.scalar(text("select count(*) from sites")) == 0
        finally:
            await db.dispose()


def test_safe_url_masks_the_password() -> None:
    assert "hunter2" not in safe_url("postgresql://u:hunter2@h/d")
    assert safe_url("::") == "<unreadable URL>"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        (
            "postgresql://diemcau:diemcau@127.0.0.1:1/d",
            "cannot reach PostgreSQL at 127.0.0.1:1: connection refused; check the host and port",
        ),
        (
            make_url(PG_URL).set(password="not-the-password").render_as_string(False),
            "refused the login (password authentication failed",
        ),
        (
            make_url(PG_URL).set(database="diemcau_no_such_db").render_as_string(False),
            "(database 'diemcau_no_such_db', user 'diemcau'): the database does not exist",
        ),
        (
            "postgresql://diemcau:diemcau@/d?host=/nonexistent-socket-dir",
            "cannot reach PostgreSQL at /nonexistent-socket-dir: no server socket there",
        ),
    ],
)
async def test_postgres_that_cannot_be_opened_says_what_to_check(url: str, says: str) -> None:
    for attempt in ("migrate", "session"):
        with pytest.raises(StoreUnavailable) as caught:
            if attempt == "migrate":
                await migrate(url)
            else:
                db = Database(url)
                try:
                    async with db.session() as s:
                        await s.execute(text("select 1"))
                finally:
                    await db.dispose()
        assert says in caught.value.message
        assert "\n" not in caught.value.message and "not-the-password" not in caught.value.message
    if "127.0.0.1" in url or "nonexistent" in url:
        assert "scripts/postgres.sh" in caught.value.message


async def test_sqlite_that_cannot_be_opened_says_what_to_check(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("plain text, not a database\n")
    with pytest.raises(StoreUnavailable, match=r"a file is in the way"):
        await migrate(f"sqlite:///{a_file / 'x.db'}")
    with pytest.raises(StoreUnavailable, match=r"is not an SQLite database"):
        await migrate(f"sqlite:///{a_file}")
    assert a_file.read_text() == "plain text, not a database\n"  # changed nothing
    # A folder nobody may create files in (even root: procfs refuses).
    with pytest.raises(StoreUnavailable, match=r"check that its folder exists and is writable"):
        await migrate("sqlite:////proc/diemcau-test.db")
