"""PresenceHub interface: send, broadcast, follow, on_message, listeners, state."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from diemcau.accounts.service import SitePrincipal
from diemcau.errors import Invalid
from diemcau.presence.hub import PresenceChange, PresenceHub
from diemcau.store import Database
from tests.presence_support import Directory, RawSite, eventually, fast_config, make_sites


@pytest.fixture
async def setup(db: Database) -> AsyncIterator[tuple[PresenceHub, Directory]]:
    key = await db.secret_key()
    directory = await make_sites(db, key, per_province=3, provinces=2)
    hub = PresenceHub(db, key, fast_config())
    await hub.start()
    yield hub, directory
    await hub.stop()


async def test_send_broadcast_follow_request_and_listener(
    setup: tuple[PresenceHub, Directory],
) -> None:
    hub, d = setup
    a, b, c = d.site_ids[:3]
    changes: list[PresenceChange] = []
    hub.add_listener(changes.append)

    async def raise_hand(site: SitePrincipal, body: Mapping[str, Any]) -> Mapping[str, Any]:
        if body.get("bad"):
            raise Invalid("no such thing")
        return {"queued": site.site_id}

    hub.on_message("hand.raise", raise_hand)

    sa, sb = RawSite(hub), RawSite(hub)
    welcome = await sa.connect(join_code=d.codes[a])
    assert welcome["type"] == "welcome"
    assert welcome["site_id"] == a
    assert welcome["streams"] == {"site": 0}
    assert welcome["session_token"]
    await sb.connect(join_code=d.codes[b])
    assert hub.is_online(a) and hub.is_online(b) and not hub.is_online(c)
    assert hub.online_site_ids() == {a, b}
    assert hub.site_state(a).state == "online"
    assert hub.site_state(c).state == "offline"
    assert [(ch.site_id, ch.old, ch.new) for ch in changes] == [
        (a, "offline", "online"),
        (b, "offline", "online"),
    ]

    # Per-site stream: each site its own numbering; c is offline and gets it later.
    await hub.send([a, b, c], "directive.new", {"id": 7, "text": "Báo cáo trước 17h"})
    await hub.send([a], "directive.new", {"id": 8})
    await eventually(lambda: len(sa.msgs("site")) == 2 and len(sb.msgs("site")) == 1)
    assert [m["seq"] for m in sa.msgs("site")] == [1, 2]
    assert sa.msgs("site")[0]["body"] == {"id": 7, "text": "Báo cáo trước 17h"}
    assert sb.msgs("site")[0]["seq"] == 1

    # Broadcast stream: only followers receive, same seq for everyone.
    await hub.follow("meeting:1", [a, c])
    assert hub.followers("meeting:1") == {a, c}
    seq = await hub.broadcast("meeting:1", "floor.granted", {"site_id": a})
    assert seq == 1
    await eventually(lambda: len(sa.msgs("meeting:1")) == 1)
    assert sa.msgs("meeting:1")[0]["seq"] == 1
    assert any(m["type"] == "follow" and m["stream"] == "meeting:1" for m in sa.received)
    assert sb.msgs("meeting:1") == []

    # Requests: handler reply, DomainError reply, unknown kind.
    await sa.send({"type": "req", "id": "r1", "kind": "hand.raise", "body": {}})
    await sa.send({"type": "req", "id": "r2", "kind": "hand.raise", "body": {"bad": True}})
    await sa.send({"type": "req", "id": "r3", "kind": "nope"})
    await eventually(lambda: len([m for m in sa.received if m["type"] == "reply"]) == 3)
    replies = {m["id"]: m for m in sa.received if m["type"] == "reply"}
    assert replies["r1"] == {"type": "reply", "id": "r1", "ok": True, "body": {"queued": a}}
    assert replies["r2"]["ok"] is False and replies["r2"]["error"]["code"] == "invalid"
    assert replies["r3"]["error"]["code"] == "unknown_kind"

    # A clean close is a transition to offline with reason "left".
    await sb.send({"type": "bye"})
    await eventually(lambda: not hub.is_online(b))
    assert hub.site_state(b).state == "offline"
    assert hub.site_state(b).reason == "left"
    assert changes[-1].site_id == b and changes[-1].new == "offline"
    await sa.close()


async def test_bad_arguments_are_refused(setup: tuple[PresenceHub, Directory]) -> None:
    hub, d = setup
    with pytest.raises(Invalid):
        await hub.broadcast("site", "x", {})  # reserved stream name
    with pytest.raises(Invalid):
        await hub.broadcast('bad"name', "x", {})
    with pytest.raises(Invalid):
        await hub.send([d.site_ids[0]], "", {})  # empty kind
    with pytest.raises(Invalid):
        await hub.send([d.site_ids[0]], "x", {"v": float("nan")})
    with pytest.raises(Invalid):
        await hub.send([d.site_ids[0]], "x", {"blob": "x" * 70_000})


def test_public_surface_is_pinned() -> None:
    import diemcau.presence as presence

    assert sorted(presence.__all__) == sorted(
        [
            "MAX_MESSAGE_BYTES",
            "PROTOCOL_VERSION",
            "CloseCode",
            "LinkThresholds",
            "PresenceChange",
            "PresenceConfig",
            "PresenceHub",
            "SiteState",
        ]
    )
    hub_api = {
        "send",
        "broadcast",
        "follow",
        "unfollow",
        "on_message",
        "is_online",
        "site_state",
        "online_site_ids",
        "add_listener",
        "publish_staff_event",
        "close_site",
        "credentials_changed",
    }
    assert hub_api <= set(dir(PresenceHub))


def test_rate_limiter_refills_over_time() -> None:
    from diemcau.ratelimit import RateLimiter

    limiter = RateLimiter(rate=2.0, burst=3.0, now=0.0)
    assert [limiter.allow(0.0) for _ in range(4)] == [True, True, True, False]
    assert limiter.allow(0.5)  # one token back after half a second at 2/s
    assert not limiter.allow(0.5)
    assert [limiter.allow(100.0) for _ in range(4)] == [True, True, True, False]  # capped


async def test_follow_unknown_site_and_bad_staff_event_are_refused(
    setup: tuple[PresenceHub, Directory],
) -> None:
    hub, d = setup
    with pytest.raises(Invalid, match="unknown site ids: 999999"):
        await hub.follow("meeting:3", [d.site_ids[0], 999_999])
    assert hub.followers("meeting:3") == set()
    with pytest.raises(Invalid):
        await hub.publish_staff_event("x", {"when": object()})
