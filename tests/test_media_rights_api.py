"""Media rights through the HTTP API, on real Janus nodes with aiortc bots.

The chair's grant goes to the meeting's chair, its delegates and admins only (a
chair of meeting A asking for meeting B's is refused, 403 ``not_chair``); a site's
grant is for the credential it proved, and when staff revoke that credential the
wiring takes its media back at once: its Janus sessions end, its old grant
publishes and watches nothing, and it gets no new grant (docs/media.md, "Who may
publish and watch"). A revocation made by another process (``diemcau site revoke``)
reaches the media plane through the server's directory poll.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from diemcau.media.janus import JanusError
from diemcau.media.orchestrator import MediaError, MediaOrchestrator
from diemcau.media.rights import holder_of
from diemcau.sim.janus_bots import JanusTarget, PublisherBot, ViewerBot
from diemcau.store.models import StaffUser
from tests.api_support import ApiEnv, api_env, media_plane_on_two_relays
from tests.route_table import TREE
from tests.test_media_cascade import wait_for

pytestmark = pytest.mark.media

STAFF = {
    "chair": ("chair", None),
    "chair2": ("chair", None),
    "ops": ("operator", None),
    "admin": ("admin", None),
}


@pytest.fixture
async def env(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[ApiEnv]:
    monkeypatch.setenv("DIEMCAU_RECORDINGS_DIR", str(tmp_path / "recordings"))
    async with api_env(sqlite_url, TREE, ["26734", "26737", "00004"], staff=STAFF) as e:
        yield e


@pytest.fixture
async def orch(env: ApiEnv) -> AsyncIterator[MediaOrchestrator]:
    async with media_plane_on_two_relays(env) as o:
        yield o


async def _meeting(env: ApiEnv, chair: str, sites: list[str], delegates: list[int]) -> int:
    headers = await env.login(chair)
    body = {"title": f"Họp {chair}", "invite": {"sites": sites}, "delegates": delegates}
    r = await env.client.post("/api/meetings", json=body, headers=headers)
    assert r.status_code == 201, r.text
    mid = int(r.json()["id"])
    r = await env.client.post(f"/api/meetings/{mid}/start", headers=headers)
    assert r.status_code == 200, r.text
    return mid


async def test_the_chair_grant_goes_to_the_meetings_chair_delegates_and_admins(
    env: ApiEnv, orch: MediaOrchestrator
) -> None:
    async with env.runtime.db.session() as s:
        ops_id = await s.scalar(select(StaffUser.id).where(StaffUser.username == "ops"))
    assert ops_id is not None
    mid_a = await _meeting(env, "chair", ["26734"], [ops_id])
    mid_b = await _meeting(env, "chair2", ["00004"], [])
    who = {name: await env.login(name) for name in STAFF}
    expected = {
        ("chair", mid_a): 200,
        ("chair", mid_b): 403,
        ("chair2", mid_a): 403,
        ("chair2", mid_b): 200,
        ("ops", mid_a): 200,  # a delegate of A
        ("ops", mid_b): 403,
        ("admin", mid_a): 200,
        ("admin", mid_b): 200,
    }
    grants = {}
    for (name, mid), status in expected.items():
        r = await env.client.get(f"/api/media/chair?meeting_id={mid}", headers=who[name])
        assert r.status_code == status, (name, mid, r.text)
        if status == 403:
            assert r.json()["error"]["code"] == "not_chair"
        else:
            grants[name, mid] = r.json()
    # The grant names its holder in its core token; the publish token is the meeting's.
    assert holder_of(grants["ops", mid_a]["token"]) == "staff.ops"
    assert grants["ops", mid_a]["publish"] == grants["chair", mid_a]["publish"]
    assert grants["chair", mid_a]["publish"]["token"] != grants["chair2", mid_b]["publish"]["token"]
    # With its grant for A, the chair cannot publish as B's chair (B's chair is away).
    a, b = grants["chair", mid_a], grants["chair2", mid_b]
    intruder = PublisherBot(
        JanusTarget(a["ws_url"], b["publish"]["room"], a["token"], a["publish"]["token"]),
        b["publish"]["feed_id"],
        "INTRUDER",
    )
    try:
        with pytest.raises(JanusError) as exc:
            await intruder.start(timeout=5)
        assert exc.value.code == 433
    finally:
        await intruder.stop()


async def test_a_revoked_site_loses_its_media_through_the_api(
    env: ApiEnv, orch: MediaOrchestrator
) -> None:
    mid = await _meeting(env, "chair", ["26734", "26737"], [])
    chair = await env.login("chair")
    site, other = await env.site("26734"), await env.site("26737")
    for code in ("26734", "26737"):
        await env.connect(code)  # a site joins only while its session is up
    for headers in (site, other):
        r = await env.client.post(f"/api/site/meetings/{mid}/join", headers=headers)
        assert r.status_code == 200, r.text
    chair_grant = orch.chair_media_grant(mid)
    bots: list[PublisherBot | ViewerBot] = []
    try:
        pub = PublisherBot(
            JanusTarget.publish_of(chair_grant), chair_grant["publish"]["feed_id"], "CHAIR"
        )
        bots.append(pub)
        await pub.start()
        grant = (await env.client.get("/api/site/media", headers=site)).json()
        kept = (await env.client.get("/api/site/media", headers=other)).json()
        assert grant["node"] == kept["node"] == "r2" and grant["program"]["pin"]
        site_pub = PublisherBot(JanusTarget.publish_of(grant), grant["publish"]["feed_id"], "S")
        watch = ViewerBot(JanusTarget.program_of(grant), chair_grant["publish"]["feed_id"])
        keeps = ViewerBot(JanusTarget.program_of(kept), chair_grant["publish"]["feed_id"])
        bots += [site_pub, watch, keeps]
        await site_pub.start()
        await wait_for(lambda: orch.cascade.links() != set(), 5, "the chair's links")
        for v in (watch, keeps):
            await v.start()
            await v.wait_frames(5, 5.0, label="CHAIR")

        admin = await env.login("admin")
        t0 = time.monotonic()
        r = await env.client.post("/api/directory/sites/26734/revoke", headers=admin)
        assert r.status_code == 200, r.text
        answered = time.monotonic() - t0
        # By the time staff get the answer, the site's Janus sessions are gone.
        await wait_for(
            lambda: time.monotonic() - watch.stats.last_frame_at > 0.5, 2.0, "media to stop"
        )
        assert watch.stats.last_frame_at - t0 < answered + 0.2
        await keeps.wait_frames(10, 3.0, label="CHAIR")  # the other site keeps its program
        # The revoked site's token gets nothing, its old grant opens nothing.
        r = await env.client.get("/api/site/media", headers=site)
        assert r.status_code == 401
        again = ViewerBot(JanusTarget.program_of(grant), chair_grant["publish"]["feed_id"])
        bots.append(again)
        with pytest.raises(JanusError) as exc:
            await again.start(timeout=5)
        assert exc.value.code == 433
        r = await env.client.get("/api/media/spot/26734", headers=chair)
        assert r.status_code == 200  # staff still watch its (empty) uplink room
        retry = PublisherBot(JanusTarget.publish_of(grant), grant["publish"]["feed_id"], "S2")
        bots.append(retry)
        with pytest.raises(JanusError) as exc:
            await retry.start(timeout=5)
        assert exc.value.code == 433
    finally:
        for bot in reversed(bots):
            await bot.stop()


async def test_a_site_revoked_by_another_process_loses_its_media_within_a_poll(
    env: ApiEnv, orch: MediaOrchestrator, sqlite_url: str
) -> None:
    """``diemcau site revoke``, run as a process of its own, reaches the media plane
    through the running server's directory poll (``credential_poll_s``): the site's
    uplink stops, its old grant publishes no more, staff still see its (empty) room."""
    poll = env.runtime.media_plane.credential_poll_s
    assert poll > 0  # the running server follows the directory
    code = "26734"
    site = await env.site(code)
    grant = (await env.client.get("/api/site/media", headers=site)).json()
    feed = int(grant["publish"]["feed_id"])
    bots: list[PublisherBot | ViewerBot] = []
    try:
        pub = PublisherBot(JanusTarget.publish_of(grant), feed, "SITE")
        bots.append(pub)
        await pub.start()
        spot = ViewerBot(JanusTarget.watch_of(await orch.spot_check_grant(code)), feed)
        bots.append(spot)
        await spot.start()
        await spot.wait_frames(5, 5.0, label="SITE")

        cli = Path(sys.executable).with_name("diemcau")
        proc = await asyncio.create_subprocess_exec(
            str(cli), "site", "revoke", code, "--db", sqlite_url,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, out.decode()
        revoked_at = time.monotonic()
        await wait_for(
            lambda: time.monotonic() - spot.stats.last_frame_at > 0.5, poll + 3.0, "media to stop"
        )
        assert spot.stats.last_frame_at - revoked_at < poll + 1.0
        assert orch.sites[code].credential is None
        with pytest.raises(MediaError):
            await orch.site_media_grant(code, credential=grant_credential(grant))
        r = await env.client.get(f"/api/media/spot/{code}", headers=await env.login("chair"))
        assert r.status_code == 200
        retry = PublisherBot(JanusTarget.publish_of(grant), feed, "SITE-AGAIN")
        bots.append(retry)
        with pytest.raises(JanusError) as exc:
            await retry.start(timeout=5)
        assert exc.value.code == 433
    finally:
        for bot in reversed(bots):
            await bot.stop()


def grant_credential(grant: dict[str, object]) -> int:
    """The credential version a site grant was made for, read from its core token."""
    holder = holder_of(str(grant["token"]))
    assert holder is not None and holder.startswith("site.")
    return int(holder.rpartition(".v")[2])
