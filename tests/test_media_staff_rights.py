"""Staff media rights taken back while in use, on real Janus nodes with aiortc bots.

A delegate removed from a live meeting loses the chair feed at once: a console of
its publishing as the chair is cut off, its grant's publish token opens the chair
room no more (the chair room's allowed list holds a new one), and it gets no new
grant; the chair and the remaining delegates publish with their next grant, and a
chair publishing while a delegate is removed keeps publishing. A staff account
disabled while it watches stops receiving within the media plane's poll, and its
old grant opens nothing; other staff keep watching (docs/media.md, "Who may publish
and watch").

Bad inputs tried: the removed delegate's old publish token and its room token in
the chair room; its new grant request (403 ``not_chair``); a grant of the previous
generation after a second removal; disabling an unknown account (404, nobody's
media stops); the disabled account's old spot-check grant again and its new one.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from diemcau.media.cluster import LocalCluster
from diemcau.media.janus import JanusError
from diemcau.media.node import NodeRegistry
from diemcau.media.orchestrator import MediaOrchestrator
from diemcau.media.service import site_refs
from diemcau.sim.janus_bots import JanusTarget, PublisherBot, ViewerBot
from diemcau.store.models import StaffUser
from tests.api_support import ApiEnv, api_env
from tests.route_table import TREE
from tests.test_media_cascade import wait_for

pytestmark = pytest.mark.media

STAFF = {
    "chair": ("chair", None),
    "chair2": ("chair", None),
    "ops": ("operator", None),
    "admin": ("admin", None),
}
UNAUTHORIZED = 433  # VideoRoom: not in the allowed list


@pytest.fixture
async def env(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[ApiEnv]:
    monkeypatch.setenv("DIEMCAU_RECORDINGS_DIR", str(tmp_path / "recordings"))
    async with api_env(sqlite_url, TREE, ["26734", "26737"], staff=STAFF) as e:
        yield e


@pytest.fixture
async def orch(env: ApiEnv) -> AsyncIterator[MediaOrchestrator]:
    cluster = LocalCluster(relays=[("r1", ("01",), 10), ("r2", ("79",), 10)])
    await cluster.start()
    registry = NodeRegistry(interval=0.3, down_after=1.0, request_timeout=0.5)
    o = MediaOrchestrator(
        cluster.nodes(), await site_refs(env.runtime.sites), sync_interval=0.2, registry=registry
    )
    try:
        await o.start()
        registry.start()
        env.runtime.media_plane.install(o)
        yield o
    finally:
        env.runtime.media_plane.uninstall()
        await o.close()
        await registry.stop()
        await cluster.stop()


@pytest.fixture
async def bots() -> AsyncIterator[list[PublisherBot | ViewerBot]]:
    started: list[PublisherBot | ViewerBot] = []
    yield started
    for bot in reversed(started):
        await bot.stop()


async def _user_id(env: ApiEnv, username: str) -> int:
    async with env.runtime.db.session() as s:
        uid = await s.scalar(select(StaffUser.id).where(StaffUser.username == username))
    assert uid is not None
    return uid


async def _refused(bots: list[PublisherBot | ViewerBot], target: JanusTarget, feed: int) -> int:
    """The Janus error code refusing to publish ``feed`` at ``target``."""
    bot = PublisherBot(target, feed, "INTRUDER")
    bots.append(bot)
    with pytest.raises(JanusError) as exc:
        await bot.start(timeout=5)
    return exc.value.code


async def _watch(
    bots: list[PublisherBot | ViewerBot], target: JanusTarget, feed: int, label: str
) -> ViewerBot:
    """A viewer of ``feed`` that got frames from ``label``: subscribed again until the
    cascade has carried the (re)published feed to the relay (10 s at most)."""
    deadline = time.monotonic() + 10.0
    while True:
        viewer = ViewerBot(target, feed)
        bots.append(viewer)
        try:
            await viewer.start(timeout=5)
            await viewer.wait_frames(5, 2.0, label=label)
            return viewer
        except (JanusError, TimeoutError):
            if time.monotonic() > deadline:
                raise
        await viewer.stop()


def _stopped(v: ViewerBot, quiet: float = 0.5) -> bool:
    return time.monotonic() - v.stats.last_frame_at > quiet


async def test_a_delegate_removed_from_a_live_meeting_loses_the_chair_feed_at_once(
    env: ApiEnv, orch: MediaOrchestrator, bots: list[PublisherBot | ViewerBot]
) -> None:
    ops, chair2 = await _user_id(env, "ops"), await _user_id(env, "chair2")
    chair = await env.login("chair")
    body: dict[str, Any] = {
        "title": "Họp",
        "invite": {"sites": ["26734"]},
        "delegates": [ops, chair2],
    }
    r = await env.client.post("/api/meetings", json=body, headers=chair)
    assert r.status_code == 201, r.text
    mid = int(r.json()["id"])
    r = await env.client.post(f"/api/meetings/{mid}/start", headers=chair)
    assert r.status_code == 200, r.text
    who = {name: await env.login(name) for name in ("chair", "chair2", "ops")}

    async def grant(name: str) -> dict[str, Any]:
        r = await env.client.get(f"/api/media/chair?meeting_id={mid}", headers=who[name])
        assert r.status_code == 200, (name, r.text)
        return dict(r.json())

    old = {name: await grant(name) for name in who}
    feed = int(old["chair"]["publish"]["feed_id"])
    assert old["ops"]["publish"] == old["chair"]["publish"]
    # A site of the meeting watches the chair feed on its relay.
    await env.connect("26734")
    site = await env.site("26734")
    r = await env.client.post(f"/api/site/meetings/{mid}/join", headers=site)
    assert r.status_code == 200, r.text
    site_grant = (await env.client.get("/api/site/media", headers=site)).json()
    # The delegate ops publishes as the chair; the site sees it.
    intruder = PublisherBot(JanusTarget.publish_of(old["ops"]), feed, "OPS")  # type: ignore[arg-type]
    bots.append(intruder)
    await intruder.start()
    await wait_for(lambda: orch.cascade.links() != set(), 5, "the chair's links")
    watch = ViewerBot(JanusTarget.program_of(site_grant), feed)
    bots.append(watch)
    await watch.start()
    await watch.wait_frames(5, 5.0, label="OPS")

    # The chair removes ops: its publishing stops now, not at the meeting's end.
    t0 = time.monotonic()
    r = await env.client.patch(f"/api/meetings/{mid}", json={"delegates": [chair2]}, headers=chair)
    assert r.status_code == 200, r.text
    answered = time.monotonic() - t0
    await wait_for(lambda: _stopped(watch), 2.0, "the removed delegate's chair feed to stop")
    assert watch.stats.last_frame_at - t0 < answered + 0.2
    # Its old grant opens the chair room no more (the feed is free), with either token.
    for token in (old["ops"]["publish"]["token"], old["ops"]["room_token"]):
        target = JanusTarget(
            old["ops"]["ws_url"], old["ops"]["publish"]["room"], old["ops"]["token"], token
        )
        assert await _refused(bots, target, feed) == UNAUTHORIZED
    r = await env.client.get(f"/api/media/chair?meeting_id={mid}", headers=who["ops"])
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_chair"

    # The chair's next grant carries the new token, and the site sees the chair.
    new = await grant("chair")
    assert new["publish"]["token"] != old["chair"]["publish"]["token"]
    assert await _refused(bots, JanusTarget.publish_of(old["chair"]), feed) == UNAUTHORIZED  # type: ignore[arg-type]
    console = PublisherBot(JanusTarget.publish_of(new), feed, "CHAIR")  # type: ignore[arg-type]
    bots.append(console)
    await console.start()
    # The site's view of the removed delegate ended with its feed; it subscribes again.
    watch = await _watch(bots, JanusTarget.program_of(site_grant), feed, "CHAIR")
    second = await grant("chair2")  # the remaining delegate's, of this generation
    assert second["publish"] == new["publish"]

    # chair2 is removed in turn while the chair publishes: the chair keeps publishing.
    r = await env.client.patch(f"/api/meetings/{mid}", json={"delegates": []}, headers=chair)
    assert r.status_code == 200, r.text
    await watch.wait_frames(20, 5.0, label="CHAIR")
    assert not _stopped(watch)
    assert console.pc.connectionState == "connected"
    await console.stop()
    # chair2's grants of both earlier generations open nothing; the chair's next does.
    for g in (old["chair2"], second):
        assert await _refused(bots, JanusTarget.publish_of(g), feed) == UNAUTHORIZED  # type: ignore[arg-type]
    again = PublisherBot(JanusTarget.publish_of(await grant("chair")), feed, "CHAIR-2")  # type: ignore[arg-type]
    bots.append(again)
    await again.start()
    await _watch(bots, JanusTarget.program_of(site_grant), feed, "CHAIR-2")


async def test_a_disabled_staff_accounts_media_stops_within_a_poll(
    env: ApiEnv, orch: MediaOrchestrator, bots: list[PublisherBot | ViewerBot]
) -> None:
    poll = env.runtime.media_plane.credential_poll_s
    assert poll > 0
    code = "26734"
    grant = (await env.client.get("/api/site/media", headers=await env.site(code))).json()
    feed = int(grant["publish"]["feed_id"])
    pub = PublisherBot(JanusTarget.publish_of(grant), feed, "SITE")
    bots.append(pub)
    await pub.start()
    admin, ops = await env.login("admin"), await env.login("ops")
    viewers: dict[str, ViewerBot] = {}
    spots: dict[str, dict[str, Any]] = {}
    for name, headers in (("ops", ops), ("admin", admin)):
        r = await env.client.get(f"/api/media/spot/{code}", headers=headers)
        assert r.status_code == 200, r.text
        spots[name] = r.json()
        viewers[name] = ViewerBot(JanusTarget.watch_of(spots[name]), feed)  # type: ignore[arg-type]
        bots.append(viewers[name])
        await viewers[name].start()
        await viewers[name].wait_frames(5, 5.0, label="SITE")

    # Bad input: an unknown account is refused and nobody's media stops.
    r = await env.client.patch("/api/admin/staff/nobody", json={"disabled": True}, headers=admin)
    assert r.status_code == 404, r.text
    r = await env.client.patch("/api/admin/staff/ops", json={"disabled": True}, headers=admin)
    assert r.status_code == 200, r.text
    disabled_at = time.monotonic()
    await wait_for(lambda: _stopped(viewers["ops"]), poll + 3.0, "the disabled account's media")
    assert viewers["ops"].stats.last_frame_at - disabled_at < poll + 1.0
    await viewers["admin"].wait_frames(10, 3.0, label="SITE")  # others keep watching
    # The disabled account gets no new grant.
    r = await env.client.get(f"/api/media/spot/{code}", headers=ops)
    assert r.status_code == 401
