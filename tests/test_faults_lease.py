"""The leader lease: one holder at a time, handed over when the holder goes, and a
holder that loses its lock learns it at once (docs/reliability.md)."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from diemcau.store.lease import LeaderLease, LeaseLost, asyncpg_params


async def test_one_holder_then_the_other_when_it_goes(pg_url: str) -> None:
    a = LeaderLease(pg_url, "https://a.example", poll_s=0.05)
    b = LeaderLease(pg_url, "https://b.example", poll_s=0.05)
    try:
        assert await a.try_take()
        assert not await b.try_take()  # a holds it
        assert await b.holder() == "https://a.example"
        waiting = asyncio.create_task(b.take())
        await asyncio.sleep(0.2)
        assert not waiting.done()
        started = time.monotonic()
        await a.release()  # the holder goes (its connection closes)
        await asyncio.wait_for(waiting, 5)
        assert b.held and time.monotonic() - started < 1.0
        assert await b.holder() == "https://b.example"
    finally:
        await a.release()
        await b.release()


async def _cut(admin: asyncpg.Connection, name: str) -> None:
    """End a lease's connection as an administrator (or a restart) would."""
    await admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
        f"diemcau leader {name}",
    )


async def test_a_cut_connection_is_taken_again_unless_the_other_has_it(pg_url: str) -> None:
    admin = await asyncpg.connect(**asyncpg_params(pg_url))
    a = LeaderLease(pg_url, "https://a.example", check_s=0.05)
    # c checks once a second: b, trying every 10 ms, takes the lock first.
    c = LeaderLease(pg_url, "https://c.example", check_s=1.0)
    b = LeaderLease(pg_url, "https://b.example", poll_s=0.01)
    try:
        assert await a.try_take()
        keeping = asyncio.create_task(a.keep())
        await _cut(admin, "https://a.example")  # nobody else wants it: a takes it again
        await asyncio.sleep(0.5)
        assert not keeping.done() and a.held
        assert not await b.try_take()
        keeping.cancel()
        await a.release()

        assert await c.try_take()
        keeping = asyncio.create_task(c.keep())
        b_waiting = asyncio.create_task(b.take())
        await _cut(admin, "https://c.example")
        await asyncio.wait_for(b_waiting, 5)
        with pytest.raises(LeaseLost, match="another server took"):
            await asyncio.wait_for(keeping, 5)
        assert not c.held and b.held
    finally:
        await admin.close()
        for lease in (a, b, c):
            await lease.release()


async def test_bad_input_is_refused_clearly() -> None:
    """Tried: an SQLite URL (no advisory locks there) and a lease never taken."""
    with pytest.raises(ValueError, match="needs PostgreSQL"):
        LeaderLease("sqlite+aiosqlite:///x.db", "a")
    lease = LeaderLease("postgresql+asyncpg://u:p@127.0.0.1:9/db", "a")
    with pytest.raises(LeaseLost, match="not held"):
        await lease.keep()
