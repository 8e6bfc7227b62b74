"""How the hub calls presence listeners: bounded, and never cut short by a stop (issue 16).

A mass drop is thousands of transitions in a second. The hub used to start every async
listener call at once; a listener touching the store per transition (the command
center's offline alerts) then held every pooled connection for tens of seconds and the
attendance writes failed with it. At stop the hub cancelled the calls still running: a
cancel landing in a store call printed "Exception during reset" and could leave a
connection close that never ends, so the demo process never exited.

Bad inputs tried: 40 sites closed at once; a stop while a listener call and a
session-log write are both half-way.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from diemcau.presence.hub import PresenceChange, PresenceHub
from diemcau.presence.models import PresenceEvent
from diemcau.presence.state import LISTENER_CONCURRENCY
from diemcau.store import Database
from tests.presence_support import Directory, RawSite, eventually, fast_config, make_sites

SITES = 40


@pytest.fixture
async def setup(db: Database) -> AsyncIterator[tuple[PresenceHub, Directory]]:
    key = await db.secret_key()
    directory = await make_sites(db, key, per_province=SITES)
    hub = PresenceHub(db, key, fast_config())
    await hub.start()
    yield hub, directory
    await hub.stop()


async def _connect_all(hub: PresenceHub, d: Directory) -> list[RawSite]:
    sites = [RawSite(hub) for _ in d.site_ids]
    await asyncio.gather(
        *(s.connect(join_code=d.codes[i]) for s, i in zip(sites, d.site_ids, strict=True))
    )
    await eventually(lambda: len(hub.online_site_ids()) == SITES)
    return sites


async def test_a_mass_drop_runs_at_most_a_bounded_number_of_calls_of_a_listener(
    setup: tuple[PresenceHub, Directory],
) -> None:
    hub, d = setup
    sites = await _connect_all(hub, d)
    running, most = 0, 0
    seen: list[PresenceChange] = []

    async def listener(change: PresenceChange) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        try:
            await asyncio.sleep(0.01)  # a store call
            seen.append(change)
        finally:
            running -= 1

    hub.add_listener(listener)
    for sid in d.site_ids:  # every site at once
        assert hub.close_site(sid)
    await eventually(lambda: len(seen) == SITES, what="every transition delivered")
    assert sorted(c.site_id for c in seen) == sorted(d.site_ids)
    assert {(c.new, c.reason) for c in seen} == {("offline", "closed_by_operator")}
    assert 1 < most <= LISTENER_CONCURRENCY < SITES
    for s in sites:
        await s.wait_closed()


async def test_stop_lets_running_listener_calls_and_log_writes_finish(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = await db.secret_key()
    d = await make_sites(db, key, per_province=3)
    hub = PresenceHub(db, key, fast_config())

    # A session-log write that is half-way when the stop comes.
    real_persist = hub.session_log.flush
    persist_in, persist_go = asyncio.Event(), asyncio.Event()
    persist_outcome: list[str] = []

    async def slow_persist() -> None:
        if not len(hub.session_log) or persist_outcome:
            await real_persist()
            return
        persist_in.set()
        try:
            await persist_go.wait()
            await real_persist()
            persist_outcome.append("stored")
        except asyncio.CancelledError:
            persist_outcome.append("cancelled")
            raise

    monkeypatch.setattr(hub.session_log, "flush", slow_persist)
    await hub.start()

    # A listener call that is in the middle of a store transaction when the stop comes.
    call_in, call_go = asyncio.Event(), asyncio.Event()
    outcome: list[str] = []
    stopping_calls: list[str] = []

    async def listener(change: PresenceChange) -> None:
        if change.reason == "server_shutdown":
            stopping_calls.append(change.reason)
            return
        if change.new != "offline":
            return
        try:
            async with db.session() as s:
                call_in.set()
                await call_go.wait()
                await s.scalar(select(func.count()).select_from(PresenceEvent))
            outcome.append("finished")
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    hub.add_listener(listener)
    a, b = RawSite(hub), RawSite(hub)
    await a.connect(join_code=d.codes[d.site_ids[0]])
    await b.connect(join_code=d.codes[d.site_ids[1]])
    await asyncio.wait_for(persist_in.wait(), 5)  # the two joins are being stored
    hub.close_site(d.site_ids[0])
    await asyncio.wait_for(call_in.wait(), 5)

    stop = asyncio.create_task(hub.stop())

    async def release() -> None:
        await asyncio.sleep(0.3)  # the stop has begun and waits for both
        assert not stop.done()
        persist_go.set()
        call_go.set()

    await asyncio.gather(release(), asyncio.wait_for(stop, 15))
    assert outcome == ["finished"]
    assert persist_outcome == ["stored"]
    # The sessions the stop itself closed are not handed to stopped consumers.
    assert stopping_calls == []
    assert not hub.tracker._callbacks
    async with db.session() as s:
        rows = (await s.execute(select(PresenceEvent.site_id, PresenceEvent.reason))).all()
    assert sorted(r for _, r in rows) == [
        "closed_by_operator",
        "joined",
        "joined",
        "server_shutdown",
    ]
    await b.wait_closed()
