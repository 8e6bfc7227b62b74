"""Central + 2 relays with real Janus processes and aiortc bots.

Program to both relays, late joiner, floor up and down, spot-check, token
scoping, a relay killed with SIGKILL, and reconcile after a control restart.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from diemcau.media.cascade import RemoteLink
from diemcau.media.cluster import LocalCluster
from diemcau.media.grants import ChairGrant, ProgramWatch, SiteGrant
from diemcau.media.janus import JanusConnection, JanusError
from diemcau.media.looks import LOOK_DISPLAY
from diemcau.media.node import NodeRegistry
from diemcau.media.orchestrator import MediaOrchestrator, room_id
from diemcau.media.topology import Move, SiteRef
from diemcau.sim.janus_bots import JanusTarget, PublisherBot, ViewerBot

pytestmark = pytest.mark.media

SITES = [SiteRef("A", "01"), SiteRef("C", "01"), SiteRef("B", "02")]


def watched(grant: SiteGrant) -> ProgramWatch:
    """The program a site's grant watches (one runs wherever this is asked)."""
    assert grant["program"] is not None, "the grant names no program"
    return grant["program"]


async def wait_for(cond: Callable[[], bool | Awaitable[bool]], timeout: float, what: str) -> float:
    """Poll ``cond`` until true; returns the seconds it took."""
    start = time.monotonic()
    while True:
        result = cond()
        if not isinstance(result, bool):
            result = await result
        if result:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


def publish_target(grant: SiteGrant | ChairGrant) -> JanusTarget:
    return JanusTarget.publish_of(grant)


def program_target(grant: SiteGrant | ChairGrant) -> JanusTarget:
    return JanusTarget.program_of(grant)


class Bots:
    """Every bot a test starts, stopped at the end."""

    def __init__(self) -> None:
        self.bots: list[PublisherBot | ViewerBot] = []

    async def publisher(self, target: JanusTarget, feed: int, label: str) -> PublisherBot:
        bot = PublisherBot(target, feed, label)
        self.bots.append(bot)
        await bot.start()
        return bot

    async def viewer(self, target: JanusTarget, feed: int) -> ViewerBot:
        bot = ViewerBot(target, feed)
        self.bots.append(bot)
        await bot.start()
        return bot

    async def stop(self) -> None:
        for bot in reversed(self.bots):
            await bot.stop()


@pytest.fixture
async def cluster() -> AsyncIterator[LocalCluster]:
    c = LocalCluster(relays=[("r1", ("01",), 10), ("r2", ("02",), 10)])
    await c.start()
    yield c
    await c.stop()


@pytest.fixture
async def bots() -> AsyncIterator[Bots]:
    b = Bots()
    yield b
    await b.stop()


class LookWatcher:
    """What a publisher's browser is told about control-plane lookers in its room."""

    def __init__(self) -> None:
        self.lookers: set[int] = set()
        self.seen: list[str] = []

    def __call__(self, msg: dict[str, Any]) -> None:
        data = (msg.get("plugindata") or {}).get("data") or {}
        joining = data.get("joining") or {}
        if joining.get("display") == LOOK_DISPLAY:
            self.lookers.add(int(joining["id"]))
            self.seen.append("joining")
        elif data.get("leaving") in self.lookers:
            self.lookers.discard(int(data["leaving"]))
            self.seen.append("leaving")


def make_orchestrator(cluster: LocalCluster, sync_interval: float = 0.2) -> MediaOrchestrator:
    registry = NodeRegistry(interval=0.3, down_after=1.0, request_timeout=0.5)
    return MediaOrchestrator(cluster.nodes(), SITES, sync_interval=sync_interval, registry=registry)


async def linked(orch: MediaOrchestrator, relay: str, meeting: str, feed: int) -> bool:
    room = room_id("program", meeting)
    try:
        parts = await orch.control(relay).participants(room)
    except JanusError as exc:
        if exc.code == 426:  # the room is not (re)created yet
            return False
        raise
    return any(p["id"] == feed and p.get("remote") for p in parts)


async def test_program_floor_spot_check_and_token_scope(cluster: LocalCluster, bots: Bots) -> None:
    orch = make_orchestrator(cluster)
    await orch.start()
    orch.registry.start()
    try:
        assert orch.plan.assignment == {"A": "r1", "C": "r1", "B": "r2"}
        chair_grant = await orch.start_program("m1")
        chair_feed = chair_grant["publish"]["feed_id"]
        await bots.publisher(publish_target(chair_grant), chair_feed, "CHAIR")
        grant_a = await orch.site_media_grant("A")
        grant_b = await orch.site_media_grant("B")
        assert grant_a["ws_url"] == cluster.processes["r1"].node.ws_url
        assert grant_b["ws_url"] == cluster.processes["r2"].node.ws_url
        assert [f["feed_id"] for f in watched(grant_a)["feeds"]] == [chair_feed]
        # The core token outlives the meeting (keepalives), the room token is short.
        assert grant_a["session_expires_at"] - grant_a["expires_at"] >= 3600
        for relay in ("r1", "r2"):
            await wait_for(
                lambda r=relay: linked(orch, r, "m1", chair_feed),  # type: ignore[misc]
                5,
                "chair on relay",
            )

        # The program reaches viewers on both relays; stamps decode; latency is sane.
        view_a = await bots.viewer(program_target(grant_a), chair_feed)
        view_b = await bots.viewer(program_target(grant_b), chair_feed)
        for v in (view_a, view_b):
            await v.wait_frames(30, 5.0, label="CHAIR")
            assert v.stats.bad_frames == 0
            assert statistics.median(v.stats.latencies_ms) < 300
        await view_b.wait_audio(3.0)
        # Fan-out happens on relays: central sends one copy per relay (plus one
        # into its own program room, where the chair console sees the floor).
        chair_room = chair_grant["publish"]["room"]
        central_room = chair_grant["program"]["room"]
        remotes = await orch.control("central").list_remotes(chair_room, chair_feed)
        assert sorted(remotes or []) == [
            f"dc-central-{central_room}",
            f"dc-r1-{central_room}",
            f"dc-r2-{central_room}",
        ]

        # A late joiner on relay 1 gets video within 1 s: the keyframe request
        # travels relay -> central over the paired RTCP port (without it: 5 s or
        # never, docs/media.md).
        late = ViewerBot(program_target(await orch.site_media_grant("C")), chair_feed)
        bots.bots.append(late)
        t0 = time.monotonic()
        await late.start()
        first = await late.wait_frames(1, 3.0, label="CHAIR")
        assert first - t0 < 1.0, f"late joiner waited {first - t0:.2f}s"

        # Site A publishes on relay 1; the floor carries it to site B (relay 2) and to central.
        site_a = await bots.publisher(
            publish_target(grant_a), grant_a["publish"]["feed_id"], "SITE-A"
        )
        # What site A's browser is told about lookers (its cue for the high layer).
        looks = LookWatcher()
        looks_seen = looks.seen
        assert site_a.handle is not None
        site_a.handle.add_listener(looks)
        granted = await orch.set_floor("m1", ["A"])
        # The floor looks at site A: its browser is told someone watches it.
        await wait_for(lambda: looks_seen == ["joining"], 3, "site A told it is watched")
        a_feed = site_a.feed_id
        assert [f["feed_id"] for f in granted["feeds"]] == [chair_feed, a_feed]
        await wait_for(lambda: linked(orch, "r2", "m1", a_feed), 3, "floor feed on relay 2")
        # The speaker's feed leaves relay 1 once (to central; the other copy stays on
        # relay 1, into its own program room) and central forwards it to relay 2.
        uplink_a = grant_a["publish"]["room"]
        assert sorted(await orch.control("r1").list_remotes(uplink_a, a_feed) or []) == [
            f"dc-central-{central_room}",
            f"dc-r1-{central_room}",
        ]
        forwards = await orch.control("central").forwarders(central_room)
        r2_port = next(rec.port for lk, rec in orch.cascade.records.items() if lk.via == "forward")
        assert {(f.publisher_id, f.port) for f in forwards} == {(a_feed, r2_port)}
        assert len(forwards) == 2  # audio and video
        b_floor = await bots.viewer(program_target(await orch.site_media_grant("B")), a_feed)
        chair_floor = await bots.viewer(program_target(chair_grant), a_feed)
        for v in (b_floor, chair_floor):
            await v.wait_frames(15, 5.0, label="SITE-A")
        # Site A is not offered its own feed (no echo of its own voice).
        again_a = await orch.site_media_grant("A")
        assert a_feed not in [f["feed_id"] for f in watched(again_a)["feeds"]]

        # A two-site dialogue: B (relay 2) joins A on the floor. Site C, on A's own
        # relay, hears B through relay 2 -> central -> relay 1 and A through relay 1 itself.
        site_b = await bots.publisher(
            publish_target(grant_b), grant_b["publish"]["feed_id"], "SITE-B"
        )
        both = await orch.set_floor("m1", ["A", "B"])
        assert [f["site"] for f in both["feeds"]] == [None, "A", "B"]
        grant_c = await orch.site_media_grant("C")
        await wait_for(lambda: linked(orch, "r1", "m1", site_b.feed_id), 3, "B on relay 1")
        c_hears_b = await bots.viewer(program_target(grant_c), site_b.feed_id)
        c_hears_a = await bots.viewer(program_target(grant_c), a_feed)
        await c_hears_b.wait_frames(10, 5.0, label="SITE-B")
        await c_hears_a.wait_frames(10, 5.0, label="SITE-A")
        await c_hears_b.wait_audio(3.0)
        # Each speaker is offered the other, never itself.
        offered_b = [f["site"] for f in watched(await orch.site_media_grant("B"))["feeds"]]
        assert offered_b == [None, "A"]
        await orch.set_floor("m1", ["A"])
        assert not await linked(orch, "r1", "m1", site_b.feed_id)

        # Revocation stops the frames at site B and at central, and the look.
        await orch.set_floor("m1", [])
        await wait_for(lambda: looks_seen == ["joining", "leaving"], 3, "the look to end")
        await wait_for(
            lambda: (
                not b_floor.pc.connectionState == "connected"
                or time.monotonic() - b_floor.stats.last_frame_at > 0.5
            ),
            3,
            "floor frames to stop at site B",
        )
        frames_then = b_floor.stats.frames
        assert not await linked(orch, "r2", "m1", a_feed)
        assert await orch.control("central").forwarders(central_room) == []
        await asyncio.sleep(0.5)
        assert b_floor.stats.frames <= frames_then + 1
        remotes_a = await orch.control("r1").list_remotes(room_id("uplink", "A"), a_feed)
        assert remotes_a == []

        # Spot-check: the chair console watches site A directly on relay 1.
        spot = await orch.spot_check_grant("A")
        assert spot["node"] == "r1"
        assert looks_seen[-1] == "joining"  # a spot-check looks too (for LOOK_SECONDS)
        uplink_parts = await orch.control("r1").participants(uplink_a)
        assert [p["display"] for p in uplink_parts if not p["publisher"]] == [LOOK_DISPLAY]
        t0 = time.monotonic()
        checker = await bots.viewer(JanusTarget.watch_of(spot), spot["subscribe"]["feed_id"])
        first = await checker.wait_frames(1, 3.0, label="SITE-A")
        assert first - t0 < 1.5
        # The video wall: one grant per relay for a page of sites.
        wall = await orch.wall_grant(["A", "B", "C"])
        assert [(g["node"], [x["site"] for x in g["subscribe"]]) for g in wall] == [
            ("r1", ["A", "C"]),
            ("r2", ["B"]),
        ]
        thumb = await bots.viewer(
            JanusTarget.watch_of(wall[1], wall[1]["subscribe"][0]["room"]),
            wall[1]["subscribe"][0]["feed_id"],
        )
        await thumb.wait_frames(5, 3.0, label="SITE-B")

        # Token scope: site A's token is worthless on relay 2 ...
        wrong_node = await JanusConnection.connect(grant_b["ws_url"], token=grant_a["token"])
        try:
            with pytest.raises(JanusError) as exc:
                await wrong_node.create_session()
            assert exc.value.code == 403
        finally:
            await wrong_node.close()
        # ... and on its own relay it cannot enter site C's uplink room (C's feed).
        own = await JanusConnection.connect(grant_a["ws_url"], token=grant_a["token"])
        try:
            h = await (await own.create_session()).attach("janus.plugin.videoroom")
            with pytest.raises(JanusError) as exc:
                await h.send(
                    {
                        "request": "join",
                        "ptype": "subscriber",
                        "room": room_id("uplink", "C"),
                        "streams": [{"feed": 1}],
                        "token": grant_a["room_token"],
                    }
                )
            assert exc.value.code == 433
            # Nor may it publish into the program room (remote publishers only), even
            # with the room's pin: no token of its grant is in the room's allowed list ...
            for token in (grant_a["room_token"], grant_a["publish"]["token"]):
                with pytest.raises(JanusError) as exc:
                    await h.send(
                        {
                            "request": "join",
                            "ptype": "publisher",
                            "room": watched(grant_a)["room"],
                            "id": 77,
                            "token": token,
                            "pin": watched(grant_a)["pin"],
                        }
                    )
                assert exc.value.code == 433, exc.value
            # ... nor create rooms or remote publishers (no admin key, no room secret).
            with pytest.raises(JanusError):
                await h.send(
                    {
                        "request": "add_remote_publisher",
                        "room": watched(grant_a)["room"],
                        "id": 99,
                        "streams": [{"type": "video", "mindex": 0, "mid": "0"}],
                    }
                )
        finally:
            await own.close()
    finally:
        await orch.close()


async def test_relay_killed_sites_move_and_get_the_program_again(
    cluster: LocalCluster, bots: Bots
) -> None:
    orch = make_orchestrator(cluster)
    moves_seen: list[Move] = []
    orch.add_move_listener(moves_seen.extend)
    await orch.start()
    orch.registry.start()
    try:
        chair_grant = await orch.start_program("m2")
        chair_feed = chair_grant["publish"]["feed_id"]
        await bots.publisher(publish_target(chair_grant), chair_feed, "CHAIR")
        grant_a = await orch.site_media_grant("A")
        await wait_for(lambda: linked(orch, "r1", "m2", chair_feed), 5, "chair on r1")
        view = await bots.viewer(program_target(grant_a), chair_feed)
        await view.wait_frames(10, 5.0, label="CHAIR")
        # Site A holds the floor from relay 1 when relay 1 dies.
        await bots.publisher(publish_target(grant_a), grant_a["publish"]["feed_id"], "SITE-A")
        await orch.set_floor("m2", ["A"])
        a_feed = grant_a["publish"]["feed_id"]
        await wait_for(lambda: linked(orch, "r2", "m2", a_feed), 3, "floor on r2")

        killed = time.monotonic()
        cluster.processes["r1"].kill()
        await wait_for(lambda: orch.plan.assignment.get("A") == "r2", 6, "site A moved")
        await wait_for(lambda: bool(moves_seen), 2, "move listeners told")
        status = {s.node: s for s in orch.status()}
        assert status["r1"].up is False and status["r1"].sites == 0
        assert status["r2"].up is True and status["r2"].sites == 3
        assert {(m.site, m.old, m.new) for m in moves_seen} == {
            ("A", "r1", "r2"),
            ("C", "r1", "r2"),
        }
        # The site is told to move (by the meetings layer) and asks for a new grant.
        grant = await orch.site_media_grant("A")
        assert grant["node"] == "r2"
        await wait_for(lambda: linked(orch, "r2", "m2", chair_feed), 5, "chair on r2")
        again = await bots.viewer(program_target(grant), chair_feed)
        await again.wait_frames(5, 5.0, label="CHAIR")
        back = time.monotonic() - killed
        assert back < 10.0, f"site back on the program after {back:.1f}s"
        # The speaker's ghost left relay 2 with its source; once the speaker
        # republishes on its new relay, the floor is carried again from there.
        assert not await linked(orch, "r2", "m2", a_feed)
        await bots.publisher(publish_target(grant), a_feed, "SITE-A")
        await wait_for(lambda: linked(orch, "r2", "m2", a_feed), 3, "floor back on r2")
        grant_b = await orch.site_media_grant("B")
        hears_a = await bots.viewer(program_target(grant_b), a_feed)
        await hears_a.wait_frames(5, 5.0, label="SITE-A")
        # Central no longer sends to the dead relay.
        program_room = chair_grant["program"]["room"]
        remotes = await orch.control("central").list_remotes(
            chair_grant["publish"]["room"], chair_feed
        )
        assert sorted(remotes or []) == [f"dc-central-{program_room}", f"dc-r2-{program_room}"]

        # The relay comes back empty: its program room and chair link are rebuilt;
        # its former sites stay where they are now (no second move).
        await cluster.processes["r1"].start()
        await wait_for(lambda: linked(orch, "r1", "m2", chair_feed), 6, "chair back on r1")
        assert orch.plan.assignment["A"] == "r2"
        assert len(moves_seen) == 2

        # Stopping the program leaves nothing behind on any node.
        await orch.stop_program("m2")
        chair_room = chair_grant["publish"]["room"]
        for node in ("central", "r1", "r2"):
            rooms = await orch.control(node).rooms()
            assert program_room not in rooms and chair_room not in rooms
        assert await orch.control("central").list_remotes(chair_room, chair_feed) is None
        assert orch.cascade.links() == set()
    finally:
        await orch.close()


@pytest.mark.parametrize("sync_first", [False, True], ids=["reconcile-first", "sync-first"])
async def test_reconcile_after_control_restart_removes_orphans(
    cluster: LocalCluster, bots: Bots, sync_first: bool
) -> None:
    first = make_orchestrator(cluster)
    await first.start()
    grant_old = await first.start_program("old")
    grant = await first.start_program("m3")
    chair_feed = grant["publish"]["feed_id"]
    await bots.publisher(publish_target(grant), chair_feed, "CHAIR")
    await bots.publisher(publish_target(grant_old), grant_old["publish"]["feed_id"], "OLD")
    await wait_for(lambda: linked(first, "r2", "m3", chair_feed), 5, "m3 chair on r2")
    await wait_for(
        lambda: linked(first, "r1", "old", grant_old["publish"]["feed_id"]), 5, "old chair on r1"
    )
    viewer = await bots.viewer(program_target(await first.site_media_grant("B", "m3")), chair_feed)
    await viewer.wait_frames(10, 5.0, label="CHAIR")
    # Site A (relay 1) holds the floor: central forwards it to relay 2.
    grant_a = await first.site_media_grant("A", "m3")
    a_feed = grant_a["publish"]["feed_id"]
    await bots.publisher(publish_target(grant_a), a_feed, "SITE-A")
    await first.set_floor("m3", ["A"])
    await wait_for(lambda: linked(first, "r2", "m3", a_feed), 5, "floor on r2")
    floor_viewer = await bots.viewer(
        program_target(await first.site_media_grant("B", "m3")), a_feed
    )
    await floor_viewer.wait_frames(10, 5.0, label="SITE-A")
    # A stray remote publisher nobody asked for.
    stray_room = room_id("program", "m3")
    await first.control("r1").add_remote_publisher(
        stray_room, 4242, "stray", [{"type": "video", "mindex": 0, "mid": "0", "codec": "vp8"}]
    )
    # A stray plain RTP forwarder of the chair's video (diemcau makes none).
    fwd = await first.control("central").request(
        {
            "request": "rtp_forward",
            "room": grant["publish"]["room"],
            "publisher_id": chair_feed,
            "host": "127.0.0.1",
            "streams": [{"mid": "1", "port": 5004}],
            "secret": first.control("central").room_secret,
            "admin_key": cluster.central.node.admin_key,
        }
    )
    assert fwd["forwarders"]
    # The control plane "crashes": it goes away without cleaning anything.
    await first.close()

    # No background sync pass for the restarted control plane: the test runs the
    # passes itself, in the order under test (a background pass racing them would
    # adopt the links first and leave nothing for the pass under test to adopt).
    second = make_orchestrator(cluster, sync_interval=3600)
    await second.start()
    try:
        second.restore_program("m3", ["A"])
        # The sync loop may run before reconcile does: either way the intact
        # m3 chair links are adopted, not rebuilt (viewers see no break).
        first_pass = await second.sync() if sync_first else None
        report = await second.reconcile()
        adopted_by = first_pass if first_pass is not None else report
        assert {(lk.feed_id, lk.target_node, lk.via) for lk in adopted_by.adopted} >= {
            (chair_feed, "central", "remote"),
            (chair_feed, "r1", "remote"),
            (chair_feed, "r2", "remote"),
            (a_feed, "r2", "forward"),
        }
        created = report.created + (first_pass.created if first_pass else [])
        assert not [lk for lk in created if lk.feed_id in (chair_feed, a_feed)]
        # Orphans: the stray remote, the old meeting's remotizations and rooms.
        assert "remote 4242 in r1/" + str(stray_room) in report.orphans_removed
        assert any(o.startswith("forwarder ") for o in report.orphans_removed)
        assert await second.control("central").list_forwarders(grant["publish"]["room"]) == []
        old_room = room_id("program", "old")
        for node in ("central", "r1", "r2"):
            assert old_room not in await second.control(node).rooms()
        assert (
            await second.control("central").list_remotes(
                grant_old["publish"]["room"], grant_old["publish"]["feed_id"]
            )
            is None
        )
        parts = await second.control("r1").participants(stray_room)
        assert sorted(p["id"] for p in parts if p.get("remote")) == sorted([chair_feed, a_feed])
        # The viewers kept receiving through all of it.
        await viewer.wait_frames(10, 3.0, label="CHAIR")
        await floor_viewer.wait_frames(10, 3.0, label="SITE-A")
        uplink_a = grant_a["publish"]["room"]
        expected = {
            RemoteLink("central", grant["publish"]["room"], chair_feed, r, stray_room)
            for r in ("central", "r1", "r2")
        } | {
            RemoteLink("r1", uplink_a, a_feed, "central", stray_room),
            RemoteLink("r1", uplink_a, a_feed, "r1", stray_room),
            RemoteLink("central", stray_room, a_feed, "r2", stray_room, via="forward"),
        }
        assert second.cascade.links() == expected
        # The adopted forward knows its forwarders: a floor change removes them.
        await second.set_floor("m3", [])
        assert await second.control("central").forwarders(stray_room) == []
    finally:
        await second.close()
