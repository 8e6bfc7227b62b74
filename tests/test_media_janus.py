"""The Janus client and local node manager against real Janus processes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from diemcau.media.janus import (
    JanusAdmin,
    JanusConnection,
    JanusError,
    child,
    integer,
    objects,
    sign_janus_token,
    values,
)
from diemcau.media.node import JanusNode, LocalJanusProcess, NodeRegistry

pytestmark = pytest.mark.media


@pytest.fixture
async def janus(tmp_path: Path) -> AsyncIterator[LocalJanusProcess]:
    proc = LocalJanusProcess.create("central", "central", tmp_path, ice_enforce_list="jlo0")
    await proc.start()
    yield proc
    await proc.stop()


async def test_only_used_plugins_and_transports_load(janus: LocalJanusProcess) -> None:
    conn = await janus.node.connect()
    try:
        info = await conn.info()
    finally:
        await conn.close()
    assert set(child(info, "plugins")) == {
        "janus.plugin.videoroom",
        "janus.plugin.streaming",
        "janus.plugin.audiobridge",
    }
    assert set(child(info, "transports")) == {"janus.transport.websockets"}
    assert info["auth_token"] is True
    cfg = (janus.config_dir / "janus.jcfg").read_text()
    assert "token_auth_secret" in cfg and "admin_secret" in cfg
    assert 'ice_enforce_list = "jlo0"' in cfg
    # Handles share two event loops (NODE_TUNING), as Janus itself reports.
    assert info["static-event-loops"] == 2


async def test_sync_async_requests_and_typed_errors(janus: LocalJanusProcess) -> None:
    node = janus.node
    conn = await node.connect()
    try:
        session = await conn.create_session()
        handle = await session.attach("janus.plugin.videoroom")
        created = await handle.send(
            {"request": "create", "room": 4242, "admin_key": node.admin_key, "publishers": 4}
        )
        assert created.data["videoroom"] == "created"
        # Bad input: the same room twice is a plugin error with its code.
        with pytest.raises(JanusError) as exc:
            await handle.send({"request": "create", "room": 4242, "admin_key": node.admin_key})
        assert exc.value.code == 427
        # Bad input: creating a room without the plugin admin_key is refused.
        with pytest.raises(JanusError):
            await handle.send({"request": "create", "room": 4243})
        # Bad input: a plugin that is not loaded is a core error.
        with pytest.raises(JanusError) as exc:
            await session.attach("janus.plugin.sip")
        assert exc.value.code == 460
        # An asynchronous request (join) resolves on the event with our transaction.
        pub = await session.attach("janus.plugin.videoroom")
        joined = await pub.send({"request": "join", "ptype": "publisher", "room": 4242, "id": 7})
        assert joined.data["videoroom"] == "joined" and joined.data["id"] == 7
        # Another publisher joining is an unsolicited plugin event on the first handle.
        pub2 = await session.attach("janus.plugin.videoroom")
        await pub2.send({"request": "join", "ptype": "publisher", "room": 4242, "id": 8})
        await pub2.detach()
        left = await pub.wait_event(
            lambda m: child(child(m, "plugindata"), "data").get("leaving") == 8, 5.0
        )
        assert left["sender"] == pub.id
        listed = await handle.send({"request": "listparticipants", "room": 4242})
        assert [p["id"] for p in objects(listed.data, "participants")] == [7]
        await session.destroy()
    finally:
        await conn.close()


async def test_tokens_gate_sessions_plugins_and_rooms(janus: LocalJanusProcess) -> None:
    node = janus.node
    ctl = await node.connect()
    s = await ctl.create_session()
    h = await s.attach("janus.plugin.videoroom")
    for room in (501, 502):
        await h.send(
            {
                "request": "create",
                "room": room,
                "admin_key": node.admin_key,
                "signed_tokens": True,
            }
        )
    # Bad input: no token at all.
    anon = await JanusConnection.connect(node.ws_url)
    # Bad input: a token signed with another secret.
    forged = await JanusConnection.connect(
        node.ws_url,
        token=sign_janus_token("not-the-secret", ["janus.plugin.videoroom"], 2**31),
    )
    # Bad input: an expired token.
    expired = await JanusConnection.connect(node.ws_url, token=node.browser_token(ttl=-10))
    core = node.browser_token()
    browser = await JanusConnection.connect(node.ws_url, token=core)
    try:
        for conn in (anon, forged, expired):
            with pytest.raises(JanusError) as exc:
                await conn.create_session()
            assert exc.value.code == 403
        bs = await browser.create_session()
        # A browser token reaches VideoRoom only, not Streaming.
        with pytest.raises(JanusError) as exc:
            await bs.attach("janus.plugin.streaming")
        assert exc.value.code == 405
        bh = await bs.attach("janus.plugin.videoroom")
        token = node.room_token([501])
        ok = await bh.send({"request": "join", "ptype": "publisher", "room": 501, "token": token})
        assert ok.data["videoroom"] == "joined"
        bh2 = await bs.attach("janus.plugin.videoroom")
        # Bad input: the room the token does not name.
        with pytest.raises(JanusError) as exc:
            await bh2.send({"request": "join", "ptype": "publisher", "room": 502, "token": token})
        assert exc.value.code == 433
        # Bad input: the core token in place of the room token.
        with pytest.raises(JanusError) as exc:
            await bh2.send({"request": "join", "ptype": "publisher", "room": 501, "token": core})
        assert exc.value.code == 433
    finally:
        for c in (anon, forged, expired, browser, ctl):
            await c.close()


async def test_an_expired_core_token_fails_keepalives_but_not_joined_rooms(
    janus: LocalJanusProcess,
) -> None:
    """Why grants carry a long core token and a short room token.

    Janus checks the core token on every request, keepalives included; the
    room token only when joining.
    """
    node = janus.node
    ctl = await node.connect()
    h = await (await ctl.create_session()).attach("janus.plugin.videoroom")
    await h.send(
        {"request": "create", "room": 601, "admin_key": node.admin_key, "signed_tokens": True}
    )
    short_core = await JanusConnection.connect(node.ws_url, token=node.browser_token(ttl=2))
    long_core = await JanusConnection.connect(node.ws_url, token=node.browser_token(ttl=600))
    try:
        s1 = await short_core.create_session(keepalive=3600)
        s2 = await long_core.create_session(keepalive=3600)
        bh = await s2.attach("janus.plugin.videoroom")
        room_token = node.room_token([601], ttl=2)
        await bh.send({"request": "join", "ptype": "publisher", "room": 601, "token": room_token})
        deadline = time.monotonic() + 5
        while True:  # wait for both 2-second tokens to expire
            try:
                await short_core.request(
                    {"janus": "keepalive", "session_id": s1.id}, final=frozenset({"ack"})
                )
            except JanusError as exc:
                assert exc.code == 403
                break
            assert time.monotonic() < deadline, "an expired core token kept working"
            await asyncio.sleep(0.2)
        # The long core token keeps the session alive after the room token expired.
        await long_core.request(
            {"janus": "keepalive", "session_id": s2.id}, final=frozenset({"ack"})
        )
        listed = await h.send({"request": "listparticipants", "room": 601})
        assert len(values(listed.data, "participants")) == 1
    finally:
        for c in (short_core, long_core, ctl):
            await c.close()


async def test_admin_api_sees_sessions_handles_and_keepalives(janus: LocalJanusProcess) -> None:
    node = janus.node
    admin = await node.connect_admin()
    conn = await node.connect()
    try:
        status = await admin.get_status()
        assert status["session_timeout"] == 60 and status["token_auth"] is True
        session = await conn.create_session(keepalive=0.2)
        handle = await session.attach("janus.plugin.videoroom")
        assert session.id in await admin.list_sessions()
        assert await admin.list_handles(session.id) == [handle.id]
        info = await admin.handle_info(session.id, handle.id)
        assert info["plugin"] == "janus.plugin.videoroom"
        first = integer(info, "session_last_activity")

        async def activity_moved() -> bool:
            later = await admin.handle_info(session.id, handle.id)
            return integer(later, "session_last_activity") > first

        deadline = time.monotonic() + 3
        while not await activity_moved():
            assert time.monotonic() < deadline, "keepalives never reached the session"
            await asyncio.sleep(0.1)
        # Bad input: the wrong admin secret.
        bad = await JanusAdmin.connect(node.admin_ws_url, "wrong")
        try:
            with pytest.raises(JanusError) as exc:
                await bad.get_status()
            assert exc.value.code == 403
        finally:
            await bad.close()
        # Signed mode: stored tokens are refused with a clear error.
        with pytest.raises(JanusError) as exc:
            await admin.add_token("abc")
        assert exc.value.code == 490
    finally:
        await conn.close()
        await admin.close()


async def test_stored_tokens_added_and_removed_over_admin(tmp_path: Path) -> None:
    proc = LocalJanusProcess.create("stored", "relay", tmp_path, auth_mode="stored")
    await proc.start()
    try:
        admin = await proc.node.connect_admin()
        await admin.add_token("site-token-1", ["janus.plugin.videoroom"])
        assert any(t["token"] == "site-token-1" for t in await admin.list_tokens())
        conn = await JanusConnection.connect(proc.node.ws_url, token="site-token-1")
        s = await conn.create_session()
        await s.attach("janus.plugin.videoroom")
        with pytest.raises(JanusError):
            await s.attach("janus.plugin.streaming")
        await admin.remove_token("site-token-1")
        with pytest.raises(JanusError) as exc:
            await conn.create_session()
        assert exc.value.code == 403
        await conn.close()
        await admin.close()
    finally:
        await proc.stop()


async def test_registry_marks_a_killed_node_down_within_5s(tmp_path: Path) -> None:
    a = LocalJanusProcess.create("relay-a", "relay", tmp_path, index=1)
    b = LocalJanusProcess.create("relay-b", "relay", tmp_path, index=2)
    await a.start()
    await b.start()
    changes: list[tuple[str, bool, float]] = []
    registry = NodeRegistry(interval=0.5)

    def record(node: JanusNode, up: bool) -> None:
        changes.append((node.name, up, time.monotonic()))

    registry.on_change(record)
    registry.add(a.node)
    registry.add(b.node)
    registry.start()
    try:
        deadline = time.monotonic() + 5
        while len(registry.healthy()) < 2:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        assert a.pid != b.pid
        killed_at = time.monotonic()
        a.kill()
        while registry.is_up("relay-a"):
            assert time.monotonic() - killed_at < 5.0, "node not marked down within 5 s"
            await asyncio.sleep(0.05)
        assert registry.is_up("relay-b")
        assert [c[:2] for c in changes if c[0] == "relay-a"] == [
            ("relay-a", True),
            ("relay-a", False),
        ]
        await a.start()
        deadline = time.monotonic() + 5
        while not registry.is_up("relay-a"):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
    finally:
        await registry.stop()
        await a.stop()
        await b.stop()


async def test_registry_defaults_mark_a_hung_node_down_within_5s(tmp_path: Path) -> None:
    import os
    import signal

    proc = LocalJanusProcess.create("relay-h", "relay", tmp_path, index=3)
    await proc.start()
    registry = NodeRegistry()  # the production defaults: 1 s checks, down after 3 s
    registry.add(proc.node)
    registry.start()
    assert proc.pid is not None
    try:
        deadline = time.monotonic() + 5
        while not registry.is_up("relay-h"):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        # A hung process: its sockets accept nothing, requests time out.
        os.kill(proc.pid, signal.SIGSTOP)
        stopped = time.monotonic()
        while registry.is_up("relay-h"):
            assert time.monotonic() - stopped < 5.0, "hung node not marked down within 5 s"
            await asyncio.sleep(0.05)
        os.kill(proc.pid, signal.SIGCONT)
        deadline = time.monotonic() + 5
        while not registry.is_up("relay-h"):
            assert time.monotonic() < deadline, "resumed node not marked up again"
            await asyncio.sleep(0.05)
    finally:
        if proc.pid is not None:
            os.kill(proc.pid, signal.SIGCONT)
        await registry.stop()
        await proc.stop()
