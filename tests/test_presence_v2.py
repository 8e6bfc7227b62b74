"""Protocol v2 (sub-second heartbeats) beside v1, and the heartbeat fast path below the library.

Bad inputs tried on the fast path: a heartbeat with an unknown field, a flood of
heartbeats in one TCP write, a heartbeat inside a fragmented message, bytes that
look like a heartbeat but are the payload of a frame whose header came first,
unmasked, fragmented, oversized and truncated frames (`heartbeat_frames`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.client import ClientConnection, connect

from diemcau.presence.connection import heartbeat_frames
from diemcau.presence.hub import PresenceHub
from diemcau.presence.tuning import event_loop_factory
from diemcau.sim.light import client_text_frame
from diemcau.store import Database
from tests.presence_support import Directory, RawSite, eventually, fast_config, make_sites

HB = b'{"type":"hb"}'


@pytest.fixture
async def directory(db: Database) -> Directory:
    return await make_sites(db, await db.secret_key(), per_province=3)


@pytest.fixture
async def hub(db: Database) -> AsyncIterator[PresenceHub]:
    h = PresenceHub(
        db,
        await db.secret_key(),
        fast_config(
            heartbeat_s=1.0, offline_after_s=1.6, fast_heartbeat_s=0.1, fast_offline_after_s=0.4
        ),
    )
    await h.start()
    yield h
    await h.stop()


async def _hello(hub: PresenceHub, code: str, v: int) -> tuple[ClientConnection, dict[str, object]]:
    ws = await connect(hub.url, compression=None, ping_interval=None)
    await ws.send(json.dumps({"type": "hello", "v": v, "join_code": code}))
    welcome: dict[str, object] = json.loads(await asyncio.wait_for(ws.recv(), 5))
    return ws, welcome


async def _closed_with(ws: ClientConnection) -> int:
    await asyncio.wait_for(ws.wait_closed(), 5)
    assert ws.protocol.close_rcvd is not None
    return ws.protocol.close_rcvd.code


async def test_each_version_gets_its_own_timing_and_deadline(
    hub: PresenceHub, directory: Directory
) -> None:
    a, b = directory.site_ids[:2]
    old, old_welcome = await _hello(hub, directory.codes[a], 1)
    new, new_welcome = await _hello(hub, directory.codes[b], 2)
    assert (old_welcome["v"], old_welcome["heartbeat_s"], old_welcome["offline_after_s"]) == (
        1,
        1.0,
        1.6,
    )
    assert (new_welcome["v"], new_welcome["heartbeat_s"], new_welcome["offline_after_s"]) == (
        2,
        0.1,
        0.4,
    )
    info = hub.describe()
    assert info["protocol_versions"] == [1, 2] and info["heartbeat_s"] == 0.1
    # Both fall silent now: the v2 site is cut after its 0.4 s, the v1 site keeps its 1.6 s.
    silent_at = time.monotonic()
    assert await _closed_with(new) == 4007
    assert hub.is_online(a), "a v1 site must not be held to the v2 deadline"
    assert hub.site_state(b).reason == "heartbeat_timeout"
    assert await _closed_with(old) == 4007
    assert time.monotonic() - silent_at >= 1.5
    assert not hub.is_online(a)


async def test_fast_heartbeats_keep_a_site_online_and_other_messages_flow(
    hub: PresenceHub, directory: Directory
) -> None:
    sid = directory.site_ids[0]
    site = RawSite(hub)
    await site.connect(join_code=directory.codes[sid])
    assert site.ws is not None
    session = hub.live_sessions()[sid]
    hb = client_text_frame(HB)
    # Heartbeats written as raw frames (the light swarm's way) and by the library.
    for i in range(12):
        if i % 2:
            site.ws.transport.write(hb)
        else:
            await site.send({"type": "hb", "t": 1764120000.5 + i})
        await asyncio.sleep(0.1)
    assert hub.is_online(sid), "heartbeats through the fast path count as signs of life"
    before = session.last_seen
    site.ws.transport.write(hb)
    await eventually(lambda: session.last_seen > before, what="a raw heartbeat stamps the session")
    # A request between heartbeats still goes through the library and is answered.
    await site.send({"type": "req", "id": "r1", "kind": "no.such.kind", "body": {}})
    await eventually(lambda: any(m.get("id") == "r1" for m in site.received), what="reply")
    assert [m["error"]["code"] for m in site.received if m.get("id") == "r1"] == ["unknown_kind"]
    await site.close()


async def test_a_flood_of_heartbeats_in_one_write_is_rate_limited(
    hub: PresenceHub, directory: Directory
) -> None:
    sid = directory.site_ids[0]
    site = RawSite(hub)
    await site.connect(join_code=directory.codes[sid])
    assert site.ws is not None
    site.ws.transport.write(client_text_frame(HB) * 200)  # burst is 60
    await eventually(lambda: site.close_code == 4008, what="rate limited")
    assert hub.site_state(sid).reason == "rate_limited"


@pytest.mark.parametrize(
    ("payload", "code"),
    [(b'{"type":"hb","x":1}', 4000), (b'{"type":"hb","t":"soon"}', 4000)],
    ids=["unknown-field", "t-not-a-number"],
)
async def test_heartbeat_look_alikes_are_still_refused(
    hub: PresenceHub, directory: Directory, payload: bytes, code: int
) -> None:
    sid = directory.site_ids[0]
    site = RawSite(hub)
    await site.connect(join_code=directory.codes[sid])
    assert site.ws is not None
    site.ws.transport.write(client_text_frame(payload))
    await eventually(lambda: site.close_code == code, what="bad heartbeat refused")


async def test_a_heartbeat_inside_a_fragmented_message_is_left_to_the_library(
    hub: PresenceHub, directory: Directory
) -> None:
    sid = directory.site_ids[0]
    site = RawSite(hub)
    await site.connect(join_code=directory.codes[sid])
    assert site.ws is not None
    first = b'{"type":'
    site.ws.transport.write(bytes((0x01, 0x80 | len(first))) + b"\0\0\0\0" + first)  # FIN=0
    await asyncio.sleep(0.1)
    site.ws.transport.write(client_text_frame(HB))  # a new data frame mid-message: 1002
    await eventually(lambda: site.close_code == 1002, what="protocol error")


async def test_heartbeat_bytes_inside_another_frame_are_not_taken_as_one(
    hub: PresenceHub, directory: Directory
) -> None:
    sid = directory.site_ids[0]
    site = RawSite(hub)
    await site.connect(join_code=directory.codes[sid])
    assert site.ws is not None
    inner = client_text_frame(HB)
    # The header of a binary frame whose payload is exactly a heartbeat frame's bytes.
    site.ws.transport.write(bytes((0x82, 0x80 | len(inner))) + b"\0\0\0\0")
    await asyncio.sleep(0.1)
    site.ws.transport.write(inner)
    await eventually(lambda: site.close_code == 4000, what="payload parsed, refused")


def test_heartbeat_frames_takes_only_whole_plain_heartbeats() -> None:
    hb = client_text_frame(HB)
    assert heartbeat_frames(hb) == 1
    assert heartbeat_frames(hb * 3) == 3
    assert heartbeat_frames(client_text_frame(b'{"type":"hb","t":1764120000.125}')) == 1
    assert heartbeat_frames(client_text_frame(b'{"type":"hb","t":-1.5e-3}')) == 1
    assert heartbeat_frames(hb[:-1]) == 0, "truncated"
    assert heartbeat_frames(hb + hb[:3]) == 0, "a partial frame after a whole one"
    assert heartbeat_frames(bytes((0x81, len(HB))) + HB) == 0, "unmasked"
    assert heartbeat_frames(bytes((0x01,)) + hb[1:]) == 0, "not the final fragment"
    assert heartbeat_frames(bytes((0xC1,)) + hb[1:]) == 0, "reserved bit set"
    assert heartbeat_frames(hb + client_text_frame(b'{"type":"bye"}')) == 0, "mixed"
    assert heartbeat_frames(client_text_frame(b'{"type":"hb","t":' + b"1" * 70 + b"}")) == 0
    assert heartbeat_frames(client_text_frame(b'{"type": "hb"}')) == 0, "spaced: the library's"
    masked = bytes((0x81, 0x80 | len(HB))) + b"\x01\x02\x03\x04"
    masked += bytes(c ^ (1, 2, 3, 4)[i % 4] for i, c in enumerate(HB))
    assert heartbeat_frames(masked) == 1, "a real mask key"
    assert heartbeat_frames(b"") == 0


def test_the_event_loop_choice() -> None:
    loop = event_loop_factory("uvloop")()
    try:
        assert type(loop).__module__.startswith("uvloop")
    finally:
        loop.close()
    with pytest.raises(ValueError, match="unknown event loop"):
        event_loop_factory("tokio")


def test_the_small_queue_behaves_like_the_deque_it_replaces() -> None:
    from collections import deque

    from diemcau.presence.connection import _SmallQueue

    small, ref = _SmallQueue[int](), deque[int]()
    for q in (small, ref):
        q.append(1)
        q.append(2)
        q.extendleft(reversed([7, 8, 9]))  # how the library puts frames back
        q.append(3)
    assert list(small) == list(ref) == [7, 8, 9, 1, 2, 3]
    assert [small.popleft() for _ in range(3)] == [ref.popleft() for _ in range(3)]
    small.remove(2)
    ref.remove(2)
    assert list(small) == list(ref) and len(small) == len(ref) == 2


async def test_a_site_connection_keeps_no_empty_deques(
    hub: PresenceHub, directory: Directory
) -> None:
    from collections import deque

    sid = directory.site_ids[0]
    site = RawSite(hub)
    await site.connect(join_code=directory.codes[sid])
    conn = hub.live_sessions()[sid].conn
    assert not isinstance(conn.drain_waiters, deque)
    assert not isinstance(conn.recv_messages.frames.queue, deque)
    # ... and the library still reads through them: a request is answered.
    await site.send({"type": "req", "id": "q1", "kind": "no.such.kind", "body": {}})
    await eventually(lambda: any(m.get("id") == "q1" for m in site.received), what="reply")
    await site.close()
