"""SQLite writers of one process take their turn in arrival order (`store.write_gate`).

Bad inputs and faults tried: a transaction that fails on a broken constraint while
it holds the turn, one that raises in the caller's code after its first write, a
writer that cannot get its turn within the wait, a read while a writer holds the
turn, a burst of writers that would race for SQLite's lock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from diemcau.store import Database
from diemcau.store.outage import is_store_outage


@pytest_asyncio.fixture
async def sqlite(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'gate.db'}")
    async with db.session() as s:
        await s.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, who TEXT UNIQUE)"))
    yield db
    await db.engine.dispose()


async def _write(db: Database, who: str, hold_s: float, order: list[str]) -> None:
    async with db.session() as s:
        await s.execute(text("INSERT INTO t (who) VALUES (:w)"), {"w": who})
        await asyncio.sleep(hold_s)  # the transaction keeps SQLite's lock meanwhile
        order.append(who)


async def test_a_waiting_writer_is_not_overtaken_by_a_newcomer(sqlite: Database) -> None:
    """w1 waits while w0 holds the lock; w2 arrives just as w0 commits. Racing SQLite's
    busy handler, w1 sleeps in its back-off (tens of ms by then) and w2 goes first; in
    turn, w1 is next."""
    order: list[str] = []
    w0 = asyncio.create_task(_write(sqlite, "w0", 0.4, order))
    await asyncio.sleep(0.01)
    w1 = asyncio.create_task(_write(sqlite, "w1", 0.0, order))
    await asyncio.sleep(0.4)
    w2 = asyncio.create_task(_write(sqlite, "w2", 0.0, order))
    await asyncio.gather(w0, w1, w2)
    assert order == ["w0", "w1", "w2"]


async def test_a_burst_of_writers_all_commit_none_times_out(sqlite: Database) -> None:
    gate = sqlite.write_gate
    assert gate is not None
    order: list[str] = []
    writers = [asyncio.create_task(_write(sqlite, f"w{n:02d}", 0.02, order)) for n in range(40)]
    await asyncio.gather(*writers)
    assert sorted(order) == [f"w{n:02d}" for n in range(40)]
    assert gate.turns >= 40 and gate.timeouts == 0 and not gate.held
    async with sqlite.session() as s:
        count = (await s.execute(text("SELECT count(*) FROM t"))).scalar_one()
    assert count == 40


async def test_reads_do_not_wait_for_a_writer(sqlite: Database) -> None:
    order: list[str] = []
    writer = asyncio.create_task(_write(sqlite, "long", 1.0, order))
    await asyncio.sleep(0.1)
    assert sqlite.write_gate is not None and sqlite.write_gate.held
    started = time.monotonic()
    async with sqlite.session() as s:
        rows = (await s.execute(text("SELECT who FROM t"))).scalars().all()
    assert time.monotonic() - started < 0.5 and rows == []  # WAL: the last commit
    await writer
    assert order == ["long"]


async def test_a_failed_or_raising_transaction_gives_its_turn_back(sqlite: Database) -> None:
    gate = sqlite.write_gate
    assert gate is not None
    async with sqlite.session() as s:
        await s.execute(text("INSERT INTO t (who) VALUES ('taken')"))
    with pytest.raises(IntegrityError):  # a broken constraint: this change's own fault
        async with sqlite.session() as s:
            await s.execute(text("INSERT INTO t (who) VALUES ('taken')"))
    assert not gate.held
    with pytest.raises(RuntimeError, match="caller"):
        async with sqlite.session() as s:
            await s.execute(text("INSERT INTO t (who) VALUES ('x')"))
            raise RuntimeError("the caller's own code failed mid-transaction")
    assert not gate.held
    async with sqlite.session() as s:  # the next writer gets its turn at once
        await s.execute(text("INSERT INTO t (who) VALUES ('next')"))
        whos = (await s.execute(text("SELECT who FROM t ORDER BY id"))).scalars().all()
    assert whos == ["taken", "next"]  # the raised one was rolled back


async def test_no_turn_within_the_wait_fails_as_a_store_outage(sqlite: Database) -> None:
    gate = sqlite.write_gate
    assert gate is not None
    gate.wait_s = 0.2
    order: list[str] = []
    holder = asyncio.create_task(_write(sqlite, "holder", 0.8, order))
    await asyncio.sleep(0.05)
    with pytest.raises(OperationalError, match="no turn to write within 0.2 s") as caught:
        async with sqlite.session() as s:
            await s.execute(text("INSERT INTO t (who) VALUES ('late')"))
    assert is_store_outage(caught.value)  # callers answer "send it again"
    assert gate.timeouts == 1
    await holder
    async with sqlite.session() as s:
        whos = (await s.execute(text("SELECT who FROM t"))).scalars().all()
    assert whos == ["holder"]  # the late change changed nothing


async def test_postgresql_has_no_gate(pg_url: str) -> None:
    db = Database(pg_url)
    try:
        assert db.write_gate is None  # row locks: writers of PostgreSQL need no turn
    finally:
        await db.engine.dispose()
