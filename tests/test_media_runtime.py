"""The media plane attached to a real control-server runtime (local Janus nodes)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from diemcau.accounts.service import create_staff, rotate_site
from diemcau.api import create_app
from diemcau.config import Settings
from diemcau.directory import service
from diemcau.directory.records import UnitRecord
from diemcau.runtime import Runtime
from diemcau.wiring import build_runtime
from tests.presence_support import RawSite
from tests.site_session import open_session

pytestmark = pytest.mark.media

TREE = [
    UnitRecord(code="VN", name="Việt Nam", level="country", unit_type="", parent_code=None),
    UnitRecord(code="01", name="Hà Nội", level="province", unit_type="Thành phố", parent_code="VN"),
    UnitRecord(code="00004", name="Ba Đình", level="commune", unit_type="Phường", parent_code="01"),
    UnitRecord(
        code="79", name="Hồ Chí Minh", level="province", unit_type="Thành phố", parent_code="VN"
    ),
    UnitRecord(
        code="26740", name="Bến Nghé", level="commune", unit_type="Phường", parent_code="79"
    ),
]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purpose (it holds no ports).
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ", 1)[1][0] != "Z"


async def _wait(predicate: object, timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if await predicate():  # type: ignore[operator]
            return time.monotonic() - start
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met in time")


def _settings(tmp_path: Path, *, relays: int) -> Settings:
    """A server on a SQLite file under `tmp_path`, with `relays` local relays (0: no media)."""
    db = f"sqlite+aiosqlite:///{tmp_path / 'd.db'}"
    return Settings(data_dir=tmp_path, database_url=db, media_relays=relays, port=0)


async def _runtime(settings: Settings) -> Runtime:
    """The runtime over a store holding the two-province test tree (not started)."""
    runtime = await build_runtime(settings)
    await service.load_units(runtime.db, TREE, dataset="test")
    return runtime


async def test_runtime_starts_local_nodes_alerts_on_a_dead_relay_and_stops_them(
    tmp_path: Path,
) -> None:
    runtime = await _runtime(_settings(tmp_path, relays=2))
    await runtime.start()
    pids: list[int] = []
    try:
        orch = runtime.media
        assert orch is not None
        status = {s.node: s for s in orch.status()}
        assert set(status) == {"central", "relay-1", "relay-2"}
        assert all(s.up for s in status.values())
        # Every site with a province gets a relay and a grant for its own uplink only.
        grant_hn = await orch.site_media_grant("00004")
        grant_hcm = await orch.site_media_grant("26740")
        assert {grant_hn["node"], grant_hcm["node"]} == {"relay-1", "relay-2"}
        plane = runtime.media_plane.plane
        assert plane is not None
        assert plane.cluster is not None
        pids = [p.proc.pid for p in plane.cluster.processes.values() if p.proc is not None]
        assert len(pids) == 3

        # Operators see the same through the API.
        app = create_app(runtime)
        await create_staff(runtime.db, "op", "operator-pass", "operator")
        await create_staff(runtime.db, "hn", "officer-pass", "province_officer", province_code="01")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:

            async def login(user: str, password: str) -> dict[str, str]:
                r = await client.post(
                    "/api/auth/login", json={"username": user, "password": password}
                )
                return {"Authorization": f"Bearer {r.json()['token']}"}

            op = await login("op", "operator-pass")
            body = (await client.get("/api/media/status", headers=op)).json()
            assert body["enabled"] and {n["node"] for n in body["nodes"]} == set(status)
            node = (await client.get("/api/media/sites/26740", headers=op)).json()
            assert node["node"] == grant_hcm["node"] and node["up"]
            officer = await login("hn", "officer-pass")
            # Another province's site reads like one that does not exist (no telling
            # which codes exist elsewhere: docs/security.md).
            r = await client.get("/api/media/sites/26740", headers=officer)
            unknown = await client.get("/api/media/sites/99999", headers=officer)
            assert r.status_code == unknown.status_code == 404, r.text
            assert r.json()["error"]["code"] == unknown.json()["error"]["code"]
            r = await client.get("/api/media/status", headers=officer)
            assert r.status_code == 403  # operators only
            r = await client.get("/api/media/sites/nope", headers=op)
            assert r.status_code == 404 and "nope" in r.json()["error"]["message"]

        # A site on the relay about to die holds a live control session.
        site = RawSite(runtime.presence)
        await site.connect(join_code=await rotate_site(runtime.db, runtime.keys.site, "00004"))
        site.beat()

        victim = grant_hn["node"]
        proc = plane.cluster.processes[victim].proc
        assert proc is not None
        # The relay's host is gone: nothing restarts it (a killed process alone would be
        # restarted by the plane's supervisor a second later, tests/test_media_faults.py).
        assert plane.cluster.supervisor is not None
        await plane.cluster.supervisor.stop()
        os.kill(proc.pid, signal.SIGKILL)
        command = runtime.command

        async def alerted() -> bool:
            return any(a.key == victim for a in await command.alerts.active("media_node_degraded"))

        assert await _wait(alerted, timeout=8) < 8
        # The dead relay's site moved to the healthy one, and was told so at once.
        moved = await orch.site_media_grant("00004")
        assert moved["node"] != victim

        async def told() -> bool:
            return any(m["kind"] == "media.moved" for m in site.msgs())

        await _wait(told, timeout=3)
        note = next(m for m in site.msgs() if m["kind"] == "media.moved")
        assert note["body"] == {"from": victim, "to": moved["node"]}
        await site.close()
    finally:
        await runtime.close()
    # Stopping the runtime stops every local Janus process it started.
    assert not [pid for pid in pids if _alive(pid)]
    assert runtime.media is None and runtime.media_plane.plane is None


async def test_no_media_plane_unless_configured(tmp_path: Path) -> None:
    runtime = await build_runtime(_settings(tmp_path, relays=0))
    try:
        await runtime.start()
        assert runtime.media is None and runtime.media_plane.plane is None
    finally:
        await runtime.close()


async def test_a_live_floor_is_restored_into_the_media_plane_after_a_restart(
    tmp_path: Path,
) -> None:
    """The program and its speaker come back from the store, declared once by the wiring."""
    settings = _settings(tmp_path, relays=1)
    runtime = await _runtime(settings)
    await create_staff(runtime.db, "chair", "chair-password", "chair")
    join_code = await rotate_site(runtime.db, runtime.keys.site, "26740")
    await runtime.start()
    try:
        transport = httpx.ASGITransport(app=create_app(runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            r = await c.post(
                "/api/auth/login", json={"username": "chair", "password": "chair-password"}
            )
            chair = {"Authorization": f"Bearer {r.json()['token']}"}
            r = await c.post("/api/auth/site-login", json={"join_code": join_code})
            site = {"Authorization": f"Bearer {r.json()['token']}"}
            body = {"title": "Họp", "invite": {"everyone": True}}
            mid = (await c.post("/api/meetings", json=body, headers=chair)).json()["id"]
            assert (await c.post(f"/api/meetings/{mid}/start", headers=chair)).status_code == 200
            session = await open_session(runtime, "26740", join_code)  # joins need a session
            assert (await c.post(f"/api/site/meetings/{mid}/join", headers=site)).status_code == 200
            r = await c.post(
                f"/api/meetings/{mid}/floor/grant", json={"site_codes": ["26740"]}, headers=chair
            )
            assert r.status_code == 200, r.text
        orch = runtime.media
        assert orch is not None and orch.meetings[str(mid)].floor == ["26740"]
        await session.close()
    finally:
        await runtime.close()

    restarted = await build_runtime(settings)
    await restarted.start()
    try:
        orch = restarted.media
        assert orch is not None
        assert list(orch.meetings) == [str(mid)]
        assert orch.meetings[str(mid)].floor == ["26740"]
    finally:
        await restarted.close()
