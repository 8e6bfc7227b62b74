"""Lossless delivery: resume per stream, durability across restart, isolation, idempotency."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from diemcau.presence.hub import PresenceHub
from diemcau.store import Database
from tests.presence_support import Directory, RawSite, Refused, eventually, fast_config, make_sites


@pytest.fixture
async def directory(db: Database) -> Directory:
    return await make_sites(db, await db.secret_key(), per_province=4)


@pytest.fixture
async def hub(db: Database) -> AsyncIterator[PresenceHub]:
    h = PresenceHub(db, await db.secret_key(), fast_config())
    await h.start()
    yield h
    await h.stop()


async def test_resume_delivers_exactly_the_missed_messages_in_order(
    hub: PresenceHub, directory: Directory
) -> None:
    a = directory.site_ids[0]
    site = RawSite(hub)
    await site.connect(join_code=directory.codes[a])
    await hub.follow("meeting:9", [a])
    await hub.send([a], "n", {"i": 1})
    await hub.broadcast("meeting:9", "b", {"i": 1})
    await eventually(lambda: len(site.msgs()) == 2)
    last = {"site": site.msgs("site")[-1]["seq"], "meeting:9": site.msgs("meeting:9")[-1]["seq"]}
    await site.close()
    await eventually(lambda: not hub.is_online(a))

    for i in range(2, 6):
        await hub.send([a], "n", {"i": i})
    for i in range(2, 4):
        await hub.broadcast("meeting:9", "b", {"i": i})

    again = RawSite(hub)
    welcome = await again.connect(join_code=directory.codes[a], resume=last)
    assert welcome["streams"] == {"site": 5, "meeting:9": 3}
    await eventually(lambda: len(again.msgs()) == 6)
    assert [(m["seq"], m["body"]["i"]) for m in again.msgs("site")] == [
        (2, 2),
        (3, 3),
        (4, 4),
        (5, 5),
    ]
    assert [m["seq"] for m in again.msgs("meeting:9")] == [2, 3]
    # Live messages keep numbering after the replay, with no duplicates.
    await hub.send([a], "n", {"i": 6})
    await eventually(lambda: len(again.msgs("site")) == 5)
    assert [m["seq"] for m in again.msgs("site")] == [2, 3, 4, 5, 6]
    await again.close()


async def test_resume_beyond_the_memory_ring_reads_the_store(
    db: Database, directory: Directory
) -> None:
    hub = PresenceHub(db, await db.secret_key(), fast_config(ring_size=2))
    await hub.start()
    try:
        a = directory.site_ids[0]
        for i in range(1, 8):
            await hub.send([a], "n", {"i": i})
        site = RawSite(hub)
        await site.connect(join_code=directory.codes[a], resume={"site": 1})
        await eventually(lambda: len(site.msgs()) == 6)
        assert [m["body"]["i"] for m in site.msgs()] == [2, 3, 4, 5, 6, 7]
        await site.close()
    finally:
        await hub.stop()


async def test_too_many_missed_messages_gives_reset(db: Database, directory: Directory) -> None:
    hub = PresenceHub(db, await db.secret_key(), fast_config(ring_size=2, replay_limit=3))
    await hub.start()
    try:
        a = directory.site_ids[0]
        for i in range(1, 6):
            await hub.send([a], "n", {"i": i})
        site = RawSite(hub)
        await site.connect(join_code=directory.codes[a], resume={"site": 0})
        await eventually(lambda: any(m["type"] == "reset" for m in site.received))
        reset = next(m for m in site.received if m["type"] == "reset")
        assert reset == {"type": "reset", "stream": "site", "seq": 5, "reason": "too_many_missed"}
        assert site.msgs() == []
        await site.close()
    finally:
        await hub.stop()


async def test_fresh_client_gets_no_replay_and_the_token_resumes(
    hub: PresenceHub, directory: Directory
) -> None:
    a = directory.site_ids[0]
    await hub.send([a], "n", {"i": 1})
    site = RawSite(hub)
    welcome = await site.connect(join_code=directory.codes[a])
    assert welcome["streams"] == {"site": 1}
    await hub.send([a], "n", {"i": 2})
    await eventually(lambda: len(site.msgs()) == 1)
    await site.close()
    await hub.send([a], "n", {"i": 3})
    again = RawSite(hub)
    w2 = await again.connect(token=welcome["session_token"], resume={"site": 2})
    assert w2["site_id"] == a
    await eventually(lambda: len(again.msgs()) == 1)
    assert again.msgs()[0]["body"] == {"i": 3}
    await again.close()


async def test_durable_messages_survive_a_server_restart(any_db: Database) -> None:
    """On SQLite and on PostgreSQL."""
    db = any_db
    key = await db.secret_key()
    directory = await make_sites(db, key, per_province=4)
    a, b = directory.site_ids[:2]
    first = PresenceHub(db, key, fast_config())
    await first.start()
    await first.follow("meeting:1", [a, b])
    await first.send([a, b], "directive.new", {"d": 1}, msg_id="dir-1")
    await first.broadcast("meeting:1", "floor", {"f": 1})
    await first.broadcast("meeting:1", "floor", {"f": 2})
    await first.send([a], "live-only", {"x": 1}, durable=False)
    await first.stop()

    second = PresenceHub(db, key, fast_config())
    await second.start()
    try:
        assert second.followers("meeting:1") == {a, b}
        site = RawSite(second)
        welcome = await site.connect(
            join_code=directory.codes[a], resume={"site": 0, "meeting:1": 0}
        )
        assert welcome["streams"] == {"site": 1, "meeting:1": 2}
        await eventually(lambda: len(site.msgs()) == 3)
        assert site.msgs("site")[0]["id"] == "dir-1"
        assert [m["body"]["f"] for m in site.msgs("meeting:1")] == [1, 2]
        # Numbering continues where the first process stopped.
        await second.send([a], "n", {})
        assert await second.broadcast("meeting:1", "floor", {"f": 3}) == 3
        await eventually(lambda: len(site.msgs()) == 5)
        assert site.msgs("site")[-1]["seq"] == 2
        await site.close()
    finally:
        await second.stop()


async def test_same_msg_id_is_delivered_once(hub: PresenceHub, directory: Directory) -> None:
    a, b = directory.site_ids[:2]
    site = RawSite(hub)
    await site.connect(join_code=directory.codes[a])
    await hub.send([a], "directive.new", {"d": 1}, msg_id="dir-7")
    await hub.send([a, b], "directive.new", {"d": 1}, msg_id="dir-7")  # retry, b is new
    await hub.follow("meeting:2", [a])
    s1 = await hub.broadcast("meeting:2", "x", {}, msg_id="act-1")
    s2 = await hub.broadcast("meeting:2", "x", {}, msg_id="act-1")
    assert s1 == s2 == 1
    await eventually(lambda: len(site.msgs()) == 2)
    assert [m["id"] for m in site.msgs()] == ["dir-7", "act-1"]
    other = RawSite(hub)
    await other.connect(join_code=directory.codes[b], resume={"site": 0})
    await eventually(lambda: len(other.msgs()) == 1)
    assert other.msgs()[0]["id"] == "dir-7"
    await site.close()
    await other.close()


async def test_a_site_cannot_read_another_sites_messages(
    hub: PresenceHub, directory: Directory
) -> None:
    a, b = directory.site_ids[:2]
    await hub.send([b], "secret", {"for": "b"})
    await hub.follow("meeting:b-only", [b])
    await hub.broadcast("meeting:b-only", "secret", {"for": "b"})
    spy = RawSite(hub)
    # Site a asks to resume b's streams by name: it only ever gets its own.
    welcome = await spy.connect(
        join_code=directory.codes[a], resume={"site": 0, "meeting:b-only": 0}
    )
    assert welcome["site_id"] == a
    assert welcome["streams"] == {"site": 0}
    await hub.send([b], "secret", {"for": "b"})
    await hub.broadcast("meeting:b-only", "secret", {"for": "b"})
    await hub.send([a], "mine", {"for": "a"})
    await eventually(lambda: len(spy.msgs()) == 1)
    assert [m["body"] for m in spy.msgs()] == [{"for": "a"}]
    # A forged resume token (b's id, a's signature missing) is refused.
    bad = RawSite(hub)
    forged = welcome["session_token"].split(".")[0] + ".AAAA"
    with pytest.raises(Refused) as refused:
        await bad.connect(token=forged)
    assert refused.value.code == 4001
    await spy.close()
