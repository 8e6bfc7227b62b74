"""Who may publish and watch, tried against real Janus nodes with aiortc bots.

Every grant allows exactly what its holder may do (docs/media.md, "Who may publish
and watch"). Tried and refused: the chair grant of meeting m1 publishing as m2's
chair; a spot-check and a wall grant publishing as a site's feed while the site is
offline; a site watching another site's uplink, another meeting's program, its own
program without the room's pin or with a wrong one; a site's tokens on another
relay; a revoked or rotated site's old grant. Still working beside them: the chair,
a site's uplink, the spot-check, the wall and the floor cascade (relay failover:
tests/test_media_cascade.py). Rooms an older control plane left with other rights
(no allowed list, no pin, no ``lock_record``) are made again at reconcile. Recording
is in test_media_recording.py.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from diemcau.media.cluster import LocalCluster
from diemcau.media.control import NodeControl
from diemcau.media.grants import ProgramWatch, SiteGrant
from diemcau.media.janus import JanusConnection, JanusError
from diemcau.media.looks import LOOK_DISPLAY
from diemcau.media.node import NodeRegistry
from diemcau.media.orchestrator import MediaError, MediaOrchestrator, feed_id, room_id
from diemcau.media.topology import SiteRef
from diemcau.sim.janus_bots import JanusTarget, PublisherBot, ViewerBot
from tests.test_media_cascade import Bots as CascadeBots
from tests.test_media_cascade import (
    linked,
    wait_for,
)

pytestmark = pytest.mark.media

# A and C on relay r1 (province 01), B on relay r2 (province 02); credential version 1.
SITES = [SiteRef("A", "01", credential=1), SiteRef("C", "01", credential=1)]
SITES += [SiteRef("B", "02", credential=1)]
UNAUTHORIZED = 433  # VideoRoom: wrong token, not in the allowed list, wrong pin
MISSING = 429  # VideoRoom: a mandatory element (the pin) is missing


def watched(grant: SiteGrant) -> ProgramWatch:
    """The program a site's grant watches (one runs wherever this is asked)."""
    assert grant["program"] is not None, "the grant names no program"
    return grant["program"]


class Bots(CascadeBots):
    """The cascade tests' bots, plus attempts that must be refused (stopped at once)."""

    async def refused_publish(self, target: JanusTarget, feed: int) -> int:
        """The Janus error code that refuses publishing ``feed`` at ``target``."""
        bot = PublisherBot(target, feed, "INTRUDER")
        try:
            with pytest.raises(JanusError) as exc:
                await bot.start(timeout=5)
        finally:
            await bot.stop()
        return exc.value.code

    async def refused_view(self, target: JanusTarget, feed: int) -> int:
        """The Janus error code that refuses watching ``feed`` at ``target``."""
        bot = ViewerBot(target, feed)
        try:
            with pytest.raises(JanusError) as exc:
                await bot.start(timeout=5)
        finally:
            await bot.stop()
        return exc.value.code


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


@pytest.fixture
async def orch(cluster: LocalCluster) -> AsyncIterator[MediaOrchestrator]:
    registry = NodeRegistry(interval=0.3, down_after=1.0, request_timeout=0.5)
    o = MediaOrchestrator(cluster.nodes(), SITES, sync_interval=0.2, registry=registry)
    await o.start()
    registry.start()
    yield o
    await o.close()


def frames_stopped(v: ViewerBot, quiet: float = 0.5) -> bool:
    return v.pc.connectionState != "connected" or time.monotonic() - v.stats.last_frame_at > quiet


async def test_a_chair_grant_publishes_only_its_own_meetings_chair_feed(
    orch: MediaOrchestrator, bots: Bots
) -> None:
    m1 = await orch.start_program("m1")
    m2 = await orch.start_program("m2")
    assert m1["publish"]["token"] != m2["publish"]["token"]
    # m2's chair is not publishing: its feed id is free to take, and a chair of m1
    # tries, with each token of its own grant, in m2's chair room.
    m2_room, m2_feed = m2["publish"]["room"], m2["publish"]["feed_id"]
    for token in (m1["publish"]["token"], m1["room_token"]):
        target = JanusTarget(m1["ws_url"], m2_room, m1["token"], token)
        assert await bots.refused_publish(target, m2_feed) == UNAUTHORIZED
    # Into its own chair room it publishes only with the publish token (the room
    # token names the room, but the room's allowed list does not hold it).
    m1_room, m1_feed = m1["publish"]["room"], m1["publish"]["feed_id"]
    target = JanusTarget(m1["ws_url"], m1_room, m1["token"], m1["room_token"])
    assert await bots.refused_publish(target, m1_feed) == UNAUTHORIZED
    await bots.publisher(JanusTarget.publish_of(m1), m1_feed, "CHAIR-1")
    # m2's own grant still finds its feed free, and the program carries each chair
    # to the relays.
    await bots.publisher(JanusTarget.publish_of(m2), m2_feed, "CHAIR-2")
    grant_a = await orch.site_media_grant("A", "m1", credential=1)
    await wait_for(lambda: linked(orch, "r1", "m1", m1_feed), 5, "m1's chair on r1")
    view = await bots.viewer(JanusTarget.program_of(grant_a), m1_feed)
    await view.wait_frames(5, 5.0, label="CHAIR-1")


async def test_watch_grants_cannot_publish_as_an_offline_site(
    orch: MediaOrchestrator, bots: Bots
) -> None:
    await orch.start_program("m1")
    spot = await orch.spot_check_grant("B")
    [wall] = await orch.wall_grant(["B"])
    uplink_b, feed_b = room_id("uplink", "B"), feed_id("site", "B")
    assert "publish" not in spot and "publish" not in wall
    # Site B is offline: its uplink room is empty and its feed id free. Neither a
    # spot-check's nor a wall's token lets anyone publish as B.
    for grant in (spot, wall):
        target = JanusTarget(grant["ws_url"], uplink_b, grant["token"], grant["room_token"])
        assert await bots.refused_publish(target, feed_b) == UNAUTHORIZED
    # Only the control plane's silent look (the spot-check's cue for the high layer).
    inside = await orch.control("r2").participants(uplink_b)
    assert [(p["display"], p["publisher"]) for p in inside] == [(LOOK_DISPLAY, False)]
    # B comes online and publishes with its own grant; both watchers see it.
    grant_b = await orch.site_media_grant("B", "m1", credential=1)
    await bots.publisher(JanusTarget.publish_of(grant_b), feed_b, "SITE-B")
    checker = await bots.viewer(JanusTarget.watch_of(spot), feed_b)
    thumb = await bots.viewer(JanusTarget.watch_of(wall, wall["subscribe"][0]["room"]), feed_b)
    for v in (checker, thumb):
        await v.wait_frames(5, 5.0, label="SITE-B")


async def test_a_site_watches_only_what_it_was_given_and_only_on_its_relay(
    orch: MediaOrchestrator, bots: Bots, cluster: LocalCluster
) -> None:
    m1 = await orch.start_program("m1")
    m2 = await orch.start_program("m2")
    chair_feed = m1["publish"]["feed_id"]
    await bots.publisher(JanusTarget.publish_of(m1), chair_feed, "CHAIR-1")
    await bots.publisher(JanusTarget.publish_of(m2), m2["publish"]["feed_id"], "CHAIR-2")
    grant_a = await orch.site_media_grant("A", "m1", credential=1)
    grant_c = await orch.site_media_grant("C", "m2", credential=1)  # same relay, other meeting
    grant_b = await orch.site_media_grant("B", "m1", credential=1)  # other relay
    assert grant_a["node"] == grant_c["node"] == "r1" and grant_b["node"] == "r2"
    await bots.publisher(JanusTarget.publish_of(grant_c), feed_id("site", "C"), "SITE-C")
    await bots.publisher(JanusTarget.publish_of(grant_a), feed_id("site", "A"), "SITE-A")
    await wait_for(lambda: linked(orch, "r1", "m2", m2["publish"]["feed_id"]), 5, "m2 on r1")

    ws, core, rooms = grant_a["ws_url"], grant_a["token"], grant_a["room_token"]
    # Site C's uplink (C's own feed) with A's room token: refused.
    target = JanusTarget(ws, room_id("uplink", "C"), core, rooms)
    assert await bots.refused_view(target, feed_id("site", "C")) == UNAUTHORIZED
    # Meeting m2's program on the same relay, even with m2's pin: refused.
    m2_program = JanusTarget(ws, watched(grant_c)["room"], core, rooms, watched(grant_c)["pin"])
    assert await bots.refused_view(m2_program, m2["publish"]["feed_id"]) == UNAUTHORIZED
    # Its own program room without the pin, or with another room's pin: refused.
    own = watched(grant_a)["room"]
    assert await bots.refused_view(JanusTarget(ws, own, core, rooms), chair_feed) == MISSING
    wrong_pin = JanusTarget(ws, own, core, rooms, watched(grant_c)["pin"])
    assert await bots.refused_view(wrong_pin, chair_feed) == UNAUTHORIZED
    # What it was given works: its program.
    mine = await bots.viewer(JanusTarget.program_of(grant_a), chair_feed)
    await mine.wait_frames(5, 5.0, label="CHAIR-1")

    # On relay r2 its core token opens nothing ...
    conn = await JanusConnection.connect(grant_b["ws_url"], token=core)
    try:
        with pytest.raises(JanusError) as exc:
            await conn.create_session()
        assert exc.value.code == 403
    finally:
        await conn.close()
    # ... and with a session opened there by site B, its room token and publish token
    # (signed by r1's secret) enter no room: not m1's program, not B's uplink.
    b_core, b_program = grant_b["token"], watched(grant_b)
    stolen = JanusTarget(grant_b["ws_url"], b_program["room"], b_core, rooms, b_program["pin"])
    assert await bots.refused_view(stolen, chair_feed) == UNAUTHORIZED
    into_b = JanusTarget(
        grant_b["ws_url"], room_id("uplink", "B"), b_core, grant_a["publish"]["token"]
    )
    assert await bots.refused_publish(into_b, feed_id("site", "A")) == UNAUTHORIZED

    # The floor cascade still carries A to B's relay.
    await orch.set_floor("m1", ["A"])
    await wait_for(lambda: linked(orch, "r2", "m1", feed_id("site", "A")), 5, "A on r2")
    hears_a = await bots.viewer(JanusTarget.program_of(grant_b), feed_id("site", "A"))
    await hears_a.wait_frames(5, 5.0, label="SITE-A")


async def test_a_revoked_site_loses_its_media_at_once_and_a_rotated_one_its_old_grant(
    orch: MediaOrchestrator, bots: Bots
) -> None:
    m1 = await orch.start_program("m1")
    chair_feed = m1["publish"]["feed_id"]
    await bots.publisher(JanusTarget.publish_of(m1), chair_feed, "CHAIR")
    old_a = await orch.site_media_grant("A", "m1", credential=1)
    old_c = await orch.site_media_grant("C", "m1", credential=1)
    grant_b = await orch.site_media_grant("B", "m1", credential=1)
    feed_a = feed_id("site", "A")
    await bots.publisher(JanusTarget.publish_of(old_a), feed_a, "SITE-A")
    await bots.publisher(JanusTarget.publish_of(old_c), feed_id("site", "C"), "SITE-C")
    await wait_for(lambda: linked(orch, "r1", "m1", chair_feed), 5, "chair on r1")
    await wait_for(lambda: linked(orch, "r2", "m1", chair_feed), 5, "chair on r2")
    # A watches the program, staff spot-check A, C and B watch the program too.
    a_watches = await bots.viewer(JanusTarget.program_of(old_a), chair_feed)
    spot_a = await bots.viewer(JanusTarget.watch_of(await orch.spot_check_grant("A")), feed_a)
    c_watches = await bots.viewer(JanusTarget.program_of(old_c), chair_feed)
    b_watches = await bots.viewer(JanusTarget.program_of(grant_b), chair_feed)
    for v in (a_watches, c_watches, b_watches):
        await v.wait_frames(5, 5.0, label="CHAIR")
    await spot_a.wait_frames(5, 5.0, label="SITE-A")

    # Staff revoke A's credential.
    t0 = time.monotonic()
    [report] = await orch.update_credential("A", None)
    took = time.monotonic() - t0
    assert report.node == "r1" and len(report.ended) == 2  # A's publisher and viewer sessions
    await wait_for(lambda: frames_stopped(a_watches), 2.0, "A's program to stop")
    await wait_for(lambda: frames_stopped(spot_a), 2.0, "A's uplink to stop")
    # The last frame each of A's watchers got came this long after the revocation.
    last = max(v.stats.last_frame_at for v in (a_watches, spot_a)) - t0
    assert last < 1.0, f"A's media still flowed {last:.2f}s after the revocation"
    print(f"revocation: rights taken back in {took * 1000:.0f} ms, last frame at {last:+.2f} s")
    # Its old grant is worth nothing: its core token still opens a session, but its
    # publish token is in no allowed list (the uplink, made again for a spot-check,
    # admits only the control plane) and its program pin changed.
    await orch.spot_check_grant("A")
    assert await bots.refused_publish(JanusTarget.publish_of(old_a), feed_a) == UNAUTHORIZED
    assert await bots.refused_view(JanusTarget.program_of(old_a), chair_feed) == UNAUTHORIZED
    # And it gets no new grant.
    for proven in (None, 1):
        with pytest.raises(MediaError):
            await orch.site_media_grant("A", "m1", credential=proven)
    # The other sites kept their program (the pin only guards new joins); C on the
    # same relay joins again with a fresh grant, its old one is refused.
    for v in (c_watches, b_watches):
        await v.wait_frames(10, 3.0, label="CHAIR")
    assert await bots.refused_view(JanusTarget.program_of(old_c), chair_feed) == UNAUTHORIZED
    fresh_c = await orch.site_media_grant("C", "m1", credential=1)
    again = await bots.viewer(JanusTarget.program_of(fresh_c), chair_feed)
    await again.wait_frames(5, 5.0, label="CHAIR")

    # C's credential is rotated (a new join code): the old PC loses its media, the
    # old grant publishes no more, a grant for the new credential publishes.
    [report] = await orch.update_credential("C", 2)
    assert len(report.ended) == 3  # C's publisher, first viewer and second viewer
    await wait_for(lambda: frames_stopped(again), 2.0, "C's old program to stop")
    with pytest.raises(MediaError):
        await orch.site_media_grant("C", "m1", credential=1)
    new_c = await orch.site_media_grant("C", "m1", credential=2)
    assert await bots.refused_publish(JanusTarget.publish_of(fresh_c), feed_id("site", "C")) == (
        UNAUTHORIZED
    )
    await bots.publisher(JanusTarget.publish_of(new_c), feed_id("site", "C"), "SITE-C2")
    checker = await bots.viewer(
        JanusTarget.watch_of(await orch.spot_check_grant("C")), feed_id("site", "C")
    )
    await checker.wait_frames(5, 5.0, label="SITE-C2")
    await b_watches.wait_frames(10, 3.0, label="CHAIR")


async def test_rights_changed_while_no_control_plane_ran_are_taken_back_at_reconcile(
    cluster: LocalCluster, bots: Bots
) -> None:
    def orchestrator(sites: list[SiteRef]) -> MediaOrchestrator:
        return MediaOrchestrator(cluster.nodes(), sites, sync_interval=3600)

    first = orchestrator(SITES)
    await first.start()
    m1 = await first.start_program("m1")
    chair_feed = m1["publish"]["feed_id"]
    await bots.publisher(JanusTarget.publish_of(m1), chair_feed, "CHAIR")
    old_a = await first.site_media_grant("A", "m1", credential=1)
    grant_c = await first.site_media_grant("C", "m1", credential=1)
    await bots.publisher(JanusTarget.publish_of(old_a), feed_id("site", "A"), "SITE-A")
    await first.sync()
    await wait_for(lambda: linked(first, "r1", "m1", chair_feed), 5, "chair on r1")
    a_watches = await bots.viewer(JanusTarget.program_of(old_a), chair_feed)
    c_watches = await bots.viewer(JanusTarget.program_of(grant_c), chair_feed)
    for v in (a_watches, c_watches):
        await v.wait_frames(5, 5.0, label="CHAIR")
    await first.close()  # the control plane goes away, leaving everything on the nodes

    # Meanwhile A's credential was rotated (version 2). The next control plane:
    second = orchestrator([SiteRef("A", "01", credential=2), *SITES[1:]])
    await second.start()
    second.restore_program("m1")
    report = await second.reconcile()
    assert f"room {room_id('uplink', 'A')} on r1" in report.orphans_removed
    # A's publisher (its room was destroyed, its session stayed) and its viewer.
    assert "2 sessions of old credentials on r1" in report.orphans_removed
    await wait_for(lambda: frames_stopped(a_watches), 2.0, "A's old program to stop")
    await c_watches.wait_frames(10, 3.0, label="CHAIR")  # C's, of a current credential, stays
    # A's old grant: its program pin changed, its uplink room is made again for v2.
    assert await bots.refused_view(JanusTarget.program_of(old_a), chair_feed) == UNAUTHORIZED
    new_a = await second.site_media_grant("A", "m1", credential=2)
    target = JanusTarget.publish_of(old_a)
    assert await bots.refused_publish(target, feed_id("site", "A")) == UNAUTHORIZED
    await bots.publisher(JanusTarget.publish_of(new_a), feed_id("site", "A"), "SITE-A2")
    again = await bots.viewer(JanusTarget.program_of(new_a), chair_feed)
    await again.wait_frames(5, 5.0, label="CHAIR")
    await second.close()


async def test_rooms_made_with_older_rights_are_made_again_at_reconcile(
    cluster: LocalCluster, bots: Bots
) -> None:
    """Rooms an older control plane left on long-running nodes: as the release before
    the rights made them (``lock_record``, but no allowed list and no pin), and older
    still (no ``lock_record``, with a description that matches today's). Reconcile
    destroys each and makes it again with today's rights."""
    old_shape = {"is_private": True, "signed_tokens": True, "lock_record": True}
    left = {
        "central": [
            ("program", "m1", "program m1", old_shape),
            ("chair", "m1", "chair m1", old_shape),
        ],
        "r1": [
            ("program", "m1", "program m1", old_shape),
            ("uplink", "A", "uplink A", old_shape),
            ("uplink", "C", "uplink C v1", {**old_shape, "lock_record": False}),
        ],
    }  # fmt: skip
    for name, rooms in left.items():
        ctl = NodeControl(cluster.processes[name].node)
        try:
            for kind, key, description, shape in rooms:
                await ctl.request(
                    {
                        "request": "create",
                        "room": room_id(kind, key),
                        "admin_key": ctl.node.admin_key,
                        "secret": ctl.room_secret,
                        "description": description,
                        **shape,
                    }
                )
        finally:
            await ctl.close()

    orch = MediaOrchestrator(cluster.nodes(), SITES, sync_interval=3600)
    await orch.start()
    try:
        orch.restore_program("m1")
        report = await orch.reconcile()
        for name, rooms in left.items():
            for kind, key, _description, _shape in rooms:
                assert f"room {room_id(kind, key)} on {name}" in report.orphans_removed
            ctl = orch.control(name)
            for info in await ctl.room_infos():
                assert info.lock_record, (name, info)
                kind = info.description.split()[0]
                assert info.pin_required == (kind == "program"), (name, info)
                allowed = await ctl.allowed(info.room)
                assert len(allowed) == (1 if kind == "program" else 2), (name, info)
        # Uplink A's new list holds A's publish token, so a spot-check's tokens no
        # longer publish as A; A's own grant does.
        spot = await orch.spot_check_grant("A")
        uplink_a, feed_a = room_id("uplink", "A"), feed_id("site", "A")
        target = JanusTarget(spot["ws_url"], uplink_a, spot["token"], spot["room_token"])
        assert await bots.refused_publish(target, feed_a) == UNAUTHORIZED
        grant_a = await orch.site_media_grant("A", "m1", credential=1)
        await bots.publisher(JanusTarget.publish_of(grant_a), feed_a, "SITE-A")
    finally:
        await orch.close()
