"""One bad client never hurts others; credentials; presence detection and link health."""

from __future__ import annotations

import asyncio
import gc
import json
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select
from websockets.asyncio.client import connect

from diemcau.accounts.service import revoke_site, rotate_site
from diemcau.presence.connection import SiteConnection
from diemcau.presence.hub import PresenceHub
from diemcau.presence.models import PresenceEvent
from diemcau.presence.protocol import Hello
from diemcau.store import Database
from diemcau.store.models import Site
from tests.presence_support import (
    Directory,
    RawSite,
    Refused,
    eventually,
    fast_config,
    make_sites,
)


@pytest.fixture
async def directory(db: Database) -> Directory:
    return await make_sites(db, await db.secret_key(), per_province=4)


@pytest.fixture
async def hub(db: Database) -> AsyncIterator[PresenceHub]:
    h = PresenceHub(
        db,
        await db.secret_key(),
        fast_config(rate=10.0, burst=20.0, send_buffer_bytes=256 * 1024, offline_after_s=0.6),
    )
    await h.start()
    yield h
    await h.stop()


async def _bystander_still_works(hub: PresenceHub, site: RawSite, site_id: int) -> None:
    before = len(site.msgs())
    await hub.send([site_id], "still.here", {})
    await eventually(lambda: len(site.msgs()) == before + 1, what="bystander delivery")
    assert hub.is_online(site_id)


async def _heartbeats(site: RawSite, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await site.send({"type": "hb"})
        try:
            await asyncio.wait_for(stop.wait(), 0.1)
        except TimeoutError:
            pass


async def _code(site: RawSite) -> str:
    c = await site.wait_closed()
    return f"{c} {site.close_reason}"


async def test_oversize_message_closes_only_that_session(
    hub: PresenceHub, directory: Directory
) -> None:
    a, b = directory.site_ids[:2]
    bad, good = RawSite(hub), RawSite(hub)
    await bad.connect(join_code=directory.codes[a])
    await good.connect(join_code=directory.codes[b])
    await bad.send(json.dumps({"type": "hb", "pad": "x" * 70_000}))  # over 64 KiB
    assert (await _code(bad)).startswith("1009")
    await eventually(lambda: hub.site_state(a).reason == "message_too_big")
    await _bystander_still_works(hub, good, b)
    await good.close()


@pytest.mark.parametrize(
    "payload",
    [
        "not json",
        '{"type": "hb", "unexpected": 1}',
        '{"type": "teleport"}',
        '{"type": "req", "id": "", "kind": "x"}',
        b"\x00\x01binary",
    ],
    ids=["not-json", "extra-field", "unknown-type", "empty-request-id", "binary-garbage"],
)
async def test_malformed_message_closes_only_that_session(
    hub: PresenceHub, directory: Directory, payload: str | bytes
) -> None:
    a, b = directory.site_ids[:2]
    bad, good = RawSite(hub), RawSite(hub)
    await bad.connect(join_code=directory.codes[a])
    await good.connect(join_code=directory.codes[b])
    await bad.send(payload)
    assert (await _code(bad)).startswith("4000 malformed message")
    assert hub.site_state(a).reason == "bad_message"
    await _bystander_still_works(hub, good, b)
    await good.close()


async def test_flood_closes_only_that_session(hub: PresenceHub, directory: Directory) -> None:
    a, b = directory.site_ids[:2]
    bad, good = RawSite(hub), RawSite(hub)
    await bad.connect(join_code=directory.codes[a])
    await good.connect(join_code=directory.codes[b])
    stop = asyncio.Event()
    beat = asyncio.create_task(_heartbeats(good, stop))
    try:
        for _ in range(100):  # burst is 20
            if bad.close_code is not None:
                break
            await bad.send({"type": "hb"})
        assert await bad.wait_closed() == 4008
        assert hub.site_state(a).reason == "rate_limited"
        await _bystander_still_works(hub, good, b)
    finally:
        stop.set()
        await beat
    await good.close()


async def test_slow_reader_closes_only_that_session(hub: PresenceHub, directory: Directory) -> None:
    a, b = directory.site_ids[:2]
    good = RawSite(hub)
    await good.connect(join_code=directory.codes[b])
    # A site that stops reading: its client buffers one message, then TCP fills up.
    slow = await connect(hub.url, compression=None, ping_interval=None, max_queue=1)
    await slow.send(json.dumps({"type": "hello", "v": 1, "join_code": directory.codes[a]}))
    stop = asyncio.Event()
    beat = asyncio.create_task(_heartbeats(good, stop))
    try:
        big = {"blob": "x" * 50_000}
        deadline = time.monotonic() + 20
        while hub.is_online(a) or hub.site_state(a).reason != "slow_reader":
            assert time.monotonic() < deadline, "slow reader was never closed"
            await hub.send([a], "bulk", big, durable=False)
            await asyncio.sleep(0)
        await _bystander_still_works(hub, good, b)
    finally:
        stop.set()
        await beat
        slow.transport.abort()
    await good.close()


async def test_revoked_credential_is_refused_and_its_session_closed(
    db: Database, hub: PresenceHub, directory: Directory
) -> None:
    a, b = directory.site_ids[:2]
    site, other = RawSite(hub), RawSite(hub)
    welcome = await site.connect(join_code=directory.codes[a])
    await other.connect(join_code=directory.codes[b])
    code = directory.codes[a].rsplit(":", 1)[0]
    await revoke_site(db, code)
    assert await hub.credentials_changed([a]) == [a]
    assert await site.wait_closed() == 4004
    assert hub.site_state(a).reason == "credential_revoked"
    for hello in ({"join_code": directory.codes[a]}, {"token": welcome["session_token"]}):
        again = RawSite(hub)
        with pytest.raises(Refused) as refused:
            await again.connect(**hello)
        assert refused.value.code == 4001
    await _bystander_still_works(hub, other, b)
    await other.close()


async def test_rotation_by_another_process_is_noticed_by_polling(
    db: Database, directory: Directory
) -> None:
    key = await db.secret_key()
    hub = PresenceHub(db, key, fast_config(credential_poll_s=0.1))
    await hub.start()
    try:
        a = directory.site_ids[0]
        site = RawSite(hub)
        await site.connect(join_code=directory.codes[a])
        async with db.session() as s:
            code = await s.scalar(select(Site.code).where(Site.id == a))
        assert code is not None
        new_code = await rotate_site(db, key, code)  # nobody tells the hub
        assert await site.wait_closed() == 4004
        with pytest.raises(Refused):
            await RawSite(hub).connect(join_code=directory.codes[a])
        fresh = RawSite(hub)
        assert (await fresh.connect(join_code=new_code))["site_id"] == a
        await fresh.close()
    finally:
        await hub.stop()


@pytest.mark.parametrize(
    ("hello", "code"),
    [
        ({"type": "hello", "v": 1, "join_code": "P00C0000:wrong-secret"}, 4001),
        ({"type": "hello", "v": 1, "join_code": "no-colon"}, 4001),
        ({"type": "hello", "v": 1}, 4001),
        ({"type": "hello", "v": 3, "join_code": "P00C0000:x"}, 4003),
        ({"type": "hello", "v": 0, "join_code": "P00C0000:x"}, 4003),
        ({"type": "hb"}, 4000),
    ],
    ids=[
        "wrong-secret",
        "malformed-code",
        "no-credential",
        "future-version",
        "past-version",
        "no-hello",
    ],
)
async def test_bad_hellos_are_refused(
    hub: PresenceHub, directory: Directory, hello: dict[str, object], code: int
) -> None:
    ws = await connect(hub.url, compression=None, ping_interval=None)
    await ws.send(json.dumps(hello))
    await ws.wait_closed()
    assert ws.protocol.close_rcvd is not None
    assert ws.protocol.close_rcvd.code == code
    assert hub.online_site_ids() == set()


async def test_hello_timeout(db: Database, directory: Directory) -> None:
    hub = PresenceHub(db, await db.secret_key(), fast_config(hello_timeout_s=0.2))
    await hub.start()
    try:
        ws = await connect(hub.url, compression=None, ping_interval=None)
        await asyncio.wait_for(ws.wait_closed(), 5)
        assert ws.protocol.close_rcvd is not None
        assert ws.protocol.close_rcvd.code == 4002
    finally:
        await hub.stop()


async def test_silent_site_is_shown_offline_quickly(
    db: Database, hub: PresenceHub, directory: Directory
) -> None:
    a, b = directory.site_ids[:2]
    silent, alive = RawSite(hub), RawSite(hub)
    await silent.connect(join_code=directory.codes[a])
    await alive.connect(join_code=directory.codes[b])
    stop = asyncio.Event()
    beat = asyncio.create_task(_heartbeats(alive, stop))
    started = time.monotonic()
    try:
        await eventually(lambda: not hub.is_online(a), timeout=3, what="silent site offline")
        took = time.monotonic() - started
        assert took < 0.6 + 1.0, f"offline after {took:.2f}s"  # timeout + sweep + CI slack
        assert hub.site_state(a).reason == "heartbeat_timeout"
        assert hub.is_online(b)
    finally:
        stop.set()
        await beat

    async def logged() -> bool:
        async with db.session() as s:
            rows = (
                await s.execute(
                    select(PresenceEvent.state, PresenceEvent.reason)
                    .where(PresenceEvent.site_id == a)
                    .order_by(PresenceEvent.id)
                )
            ).all()
        return [tuple(r) for r in rows] == [("online", "joined"), ("offline", "heartbeat_timeout")]

    await eventually(logged, what="session log rows")
    await alive.close()


async def test_link_health_degrades_and_recovers(hub: PresenceHub, directory: Directory) -> None:
    a = directory.site_ids[0]
    site = RawSite(hub)
    await site.connect(join_code=directory.codes[a])
    bad_link = {"rtt_ms": 120, "loss_pct": 9.5, "jitter_ms": 10, "send_kbps": 300}
    await site.send({"type": "hb", "link": bad_link})
    await eventually(lambda: hub.site_state(a).state == "degraded")
    assert hub.site_state(a).reason == "loss 9.5% > 5%"
    assert hub.is_online(a)
    # Hysteresis: 4.5% is under the limit but not under 80% of it.
    await site.send({"type": "link", "link": {**bad_link, "loss_pct": 4.5}})
    await site.send({"type": "link", "link": {**bad_link, "rtt_ms": 900, "loss_pct": 0}})
    await eventually(lambda: hub.site_state(a).reason.startswith("rtt"))
    await site.send({"type": "link", "link": {"rtt_ms": 40, "loss_pct": 0.1, "jitter_ms": 3}})
    await eventually(lambda: hub.site_state(a).state == "online")
    assert hub.site_state(a).reason == "link_recovered"
    state = hub.site_state(a)
    assert state.link is not None and state.link.rtt_ms == 40
    await site.close()


async def test_operator_close_and_replacement(hub: PresenceHub, directory: Directory) -> None:
    a = directory.site_ids[0]
    first = RawSite(hub)
    await first.connect(join_code=directory.codes[a])
    second = RawSite(hub)
    await second.connect(join_code=directory.codes[a])
    assert await first.wait_closed() == 4005  # replaced, the site stays online
    assert hub.is_online(a)
    assert hub.close_site(a, "maintenance")
    assert await second.wait_closed() == 4009
    assert hub.site_state(a).reason == "closed_by_operator"
    assert not hub.close_site(a)


async def test_a_stalled_server_does_not_drop_healthy_sites(
    hub: PresenceHub, directory: Directory
) -> None:
    """The loop blocked for 1 s (GC, busy machine): heartbeats queued meanwhile are late
    through the server's fault, so nobody is shown offline."""
    a = directory.site_ids[0]
    site = RawSite(hub)
    await site.connect(join_code=directory.codes[a])
    site.beat(0.1)
    await asyncio.sleep(0.3)
    time.sleep(1.0)  # noqa: ASYNC251 - the point: block the event loop (offline_after is 0.6 s)
    await asyncio.sleep(0.5)
    assert hub.is_online(a), hub.site_state(a)
    await site.close()


async def test_a_running_session_keeps_neither_its_upgrade_headers_nor_its_hello(
    hub: PresenceHub, directory: Directory
) -> None:
    """~2.7 KB a site the library and the hello's frame used to hold for the session's
    life (docs/performance.md): the headers are emptied once the session runs, the parsed
    hello is freed, and the session still reads heartbeats, gets messages and resumes."""
    sid = directory.site_ids[0]
    site = RawSite(hub)
    await site.connect(join_code=directory.codes[sid])
    session = hub.sessions.get(sid)
    assert session is not None
    conn = session.conn
    assert isinstance(conn, SiteConnection) and conn.request is not None
    assert len(conn.request.headers) == 0 and conn.response is None
    gc.collect()
    assert not [o for o in gc.get_objects() if isinstance(o, Hello)]

    await site.send({"type": "hb"})  # frames still parse after the handshake is let go
    await site.send({"type": "link", "link": {"rtt_ms": 40, "loss_pct": 0.5, "jitter_ms": 3}})
    await hub.send([sid], "still.here", {})
    await eventually(lambda: len(site.msgs()) == 1, what="delivery")
    assert hub.is_online(sid)
    await site.close()
    again = RawSite(hub)  # and the next connection of the same site is a handshake again
    await again.connect(join_code=directory.codes[sid], resume={"site": 1})
    assert hub.is_online(sid)
    await again.close()
