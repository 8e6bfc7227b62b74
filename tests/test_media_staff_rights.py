"""Staff media rights taken back while in use, on real Janus nodes with aiortc bots.

A delegate removed from a live meeting loses the chair feed at once: a console of
its publishing as the chair is cut off, its grant's publish token opens the chair
room no more (the chair room's allowed list holds a new one), and it gets no new
grant; the chair and the remaining delegates publish with their next grant, and a
chair publishing while a delegate is removed keeps publishing. A staff account
disabled while it watches stops receiving within the media plane's poll, and its
old grant opens nothing; so does one that logs out, changes its password, or is
demoted; other staff keep watching. A restarted control plane keeps a removed
delegate's chair token refused (docs/media.md, "Who may publish and watch").

Bad inputs tried: the removed delegate's old publish token and its room token in
the chair room; its new grant request (403 ``not_chair``); a grant of the previous
generation after a second removal; disabling an unknown account (404, nobody's
media stops); the disabled account's old spot-check grant again and its new one; a
logout with a forged token, a wrong old password, an unknown role, a role change to
the same role (nobody's media stops over a poll).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from diemcau.media.janus import JanusError
from diemcau.media.orchestrator import MediaOrchestrator
from diemcau.media.service import site_refs
from diemcau.media.staff_epochs import sessions_ended
from diemcau.sim.janus_bots import JanusTarget, PublisherBot, ViewerBot
from diemcau.store.models import StaffUser
from tests.api_support import PASSWORD, ApiEnv, api_env, media_plane_on_two_relays
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
    async with media_plane_on_two_relays(env) as o:
        yield o


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


async def _keep_going(views: list[ViewerBot], seconds: float) -> None:
    """Every one of ``views`` keeps getting frames for ``seconds`` (a poll has run)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        stopped = [i for i, v in enumerate(views) if _stopped(v, quiet=1.0)]
        assert not stopped, f"views {stopped} stopped"
        await asyncio.sleep(0.2)


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


def test_the_sessions_to_end_follow_epochs_not_a_restart() -> None:
    """The first look ends only disabled accounts' sessions (a restart cuts nobody off);
    later looks end an account whose epoch moved, either way, one disabled since, or
    gone; an account first seen, or enabled again with its epoch unchanged, keeps."""
    first = {"a": (3, False), "b": (0, True)}
    assert sessions_ended(None, first) == {"b"}
    assert sessions_ended(first, first) == set()
    now = {
        "a": (4, False),  # logged out / password or role changed
        "c": (0, False),  # created since: what it opened is current
        "d": (1, True),  # created and disabled since
    }
    assert sessions_ended(first, {**now, "b": (0, True)}) == {"a", "d"}
    assert sessions_ended(first, {**now, "b": (0, False)}) == {"a", "d"}  # enabled again
    assert sessions_ended(first, {"a": (2, False), "b": (0, True)}) == {"a"}  # moved back
    assert sessions_ended(first, {"b": (0, True)}) == {"a"}  # gone
    assert sessions_ended({"a": (3, False)}, {"a": (3, True)}) == {"a"}  # disabled, same epoch


async def test_logout_password_and_role_changes_end_the_accounts_media_within_a_poll(
    env: ApiEnv, orch: MediaOrchestrator, bots: list[PublisherBot | ViewerBot]
) -> None:
    """Every end of an account's API sessions ends its Janus sessions too: a logout
    (ops), a password change (chair2), a chair demoted to operator (its chair console
    publishing into a live meeting). The admin, whose epoch never moves, keeps
    watching throughout, also across the polls before any change. Bad inputs change
    nothing: a logout with a forged token, a wrong old password, an unknown role, a
    role change to the same role."""
    poll = env.runtime.media_plane.credential_poll_s
    assert poll > 0
    code = "26734"
    who = {name: await env.login(name) for name in ("chair", "chair2", "ops", "admin")}
    # A live meeting of the site: the chair publishes the chair feed, the site watches it.
    body: dict[str, Any] = {"title": "Họp", "invite": {"sites": [code]}}
    r = await env.client.post("/api/meetings", json=body, headers=who["chair"])
    assert r.status_code == 201, r.text
    mid = int(r.json()["id"])
    r = await env.client.post(f"/api/meetings/{mid}/start", headers=who["chair"])
    assert r.status_code == 200, r.text
    await env.connect(code)
    site = await env.site(code)
    r = await env.client.post(f"/api/site/meetings/{mid}/join", headers=site)
    assert r.status_code == 200, r.text
    site_grant = (await env.client.get("/api/site/media", headers=site)).json()
    r = await env.client.get(f"/api/media/chair?meeting_id={mid}", headers=who["chair"])
    assert r.status_code == 200, r.text
    chair_grant = r.json()
    chair_feed = int(chair_grant["publish"]["feed_id"])
    console = PublisherBot(JanusTarget.publish_of(chair_grant), chair_feed, "CHAIR")
    bots.append(console)
    await console.start()
    site_feed = int(site_grant["publish"]["feed_id"])
    pub = PublisherBot(JanusTarget.publish_of(site_grant), site_feed, "SITE")
    bots.append(pub)
    await pub.start()
    await wait_for(lambda: orch.cascade.links() != set(), 5, "the chair's links")
    chair_seen = await _watch(bots, JanusTarget.program_of(site_grant), chair_feed, "CHAIR")
    viewers: dict[str, ViewerBot] = {}
    for name in ("ops", "chair2", "admin"):
        r = await env.client.get(f"/api/media/spot/{code}", headers=who[name])
        assert r.status_code == 200, (name, r.text)
        viewers[name] = ViewerBot(JanusTarget.watch_of(r.json()), site_feed)
        bots.append(viewers[name])
        await viewers[name].start()
        await viewers[name].wait_frames(5, 5.0, label="SITE")

    # Bad inputs first: none of them moves an epoch, so nobody's media stops.
    forged = {"Authorization": "Bearer " + who["ops"]["Authorization"][7:-4] + "AAAA"}
    r = await env.client.post("/api/auth/logout", headers=forged)
    assert r.status_code == 401, r.text
    wrong = {"old_password": "not the password", "new_password": "another good one"}
    r = await env.client.post("/api/auth/password", json=wrong, headers=who["chair2"])
    assert r.status_code == 403, r.text
    r = await env.client.patch(
        "/api/admin/staff/chair", json={"role": "emperor"}, headers=who["admin"]
    )
    assert r.status_code == 422, r.text
    r = await env.client.patch(
        "/api/admin/staff/chair", json={"role": "chair"}, headers=who["admin"]
    )
    assert r.status_code == 200, r.text
    await _keep_going([chair_seen, *viewers.values()], poll + 1.5)
    r = await env.client.get(f"/api/media/spot/{code}", headers=who["chair"])
    assert r.status_code == 200, r.text  # the same-role change kept the chair's session

    async def ended(what: str, view: ViewerBot) -> None:
        t0 = time.monotonic()
        await wait_for(lambda: _stopped(view), poll + 3.0, what)
        assert view.stats.last_frame_at - t0 < poll + 1.0, what
        await viewers["admin"].wait_frames(10, 3.0, label="SITE")  # the admin keeps watching

    r = await env.client.post("/api/auth/logout", headers=who["ops"])
    assert r.status_code == 204, r.text
    await ended("the logged-out account's media", viewers["ops"])
    assert not _stopped(viewers["chair2"]) and not _stopped(chair_seen)

    good = {"old_password": PASSWORD, "new_password": "another good one"}
    r = await env.client.post("/api/auth/password", json=good, headers=who["chair2"])
    assert r.status_code == 200, r.text
    await ended("the media of the account whose password changed", viewers["chair2"])
    assert not _stopped(chair_seen)

    r = await env.client.patch(
        "/api/admin/staff/chair", json={"role": "operator"}, headers=who["admin"]
    )
    assert r.status_code == 200, r.text
    await ended("the demoted chair's chair feed", chair_seen)
    assert console.pc.connectionState != "connected" or _stopped(chair_seen)
    # Its page must log in again, as with every API session of the account.
    r = await env.client.get(f"/api/media/chair?meeting_id={mid}", headers=who["chair"])
    assert r.status_code == 401, r.text


async def test_a_restarted_control_plane_keeps_a_removed_delegates_chair_token_dead(
    env: ApiEnv, orch: MediaOrchestrator, bots: list[PublisherBot | ViewerBot]
) -> None:
    """The chair room's publish-token generation is read back from the room's
    description (`reconcile`): after a control-plane restart, a removed delegate's old
    chair grant is still refused (433) and the chair's grant of the new generation
    publishes. Bad input tried: the removed delegate's generation-0 publish token,
    before and after the restart."""
    ops = await _user_id(env, "ops")
    chair = await env.login("chair")
    body: dict[str, Any] = {"title": "Họp", "invite": {"sites": ["26734"]}, "delegates": [ops]}
    r = await env.client.post("/api/meetings", json=body, headers=chair)
    assert r.status_code == 201, r.text
    mid = int(r.json()["id"])
    r = await env.client.post(f"/api/meetings/{mid}/start", headers=chair)
    assert r.status_code == 200, r.text
    r = await env.client.get(f"/api/media/chair?meeting_id={mid}", headers=await env.login("ops"))
    assert r.status_code == 200, r.text
    old = r.json()
    feed = int(old["publish"]["feed_id"])
    r = await env.client.patch(f"/api/meetings/{mid}", json={"delegates": []}, headers=chair)
    assert r.status_code == 200, r.text
    assert await _refused(bots, JanusTarget.publish_of(old), feed) == UNAUTHORIZED

    # The control plane restarts: a new orchestrator over the same Janus nodes.
    env.runtime.media_plane.uninstall()
    second = MediaOrchestrator(
        orch.registry.nodes(), await site_refs(env.runtime.sites), sync_interval=0.2
    )
    try:
        await second.start()
        second.restore_program(mid, [])
        await second.reconcile()
        env.runtime.media_plane.install(second)
        assert await _refused(bots, JanusTarget.publish_of(old), feed) == UNAUTHORIZED
        assert second.state.meetings[str(mid)].chair_generation == 1
        r = await env.client.get(f"/api/media/chair?meeting_id={mid}", headers=chair)
        assert r.status_code == 200, r.text
        new = r.json()
        assert new["publish"]["token"] != old["publish"]["token"]
        console = PublisherBot(JanusTarget.publish_of(new), feed, "CHAIR")
        bots.append(console)
        await console.start()
    finally:
        env.runtime.media_plane.uninstall()
        await second.close()
