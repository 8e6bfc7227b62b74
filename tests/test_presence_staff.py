"""Staff live stream over the real app: snapshot, coalesced deltas, scope, refusals."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from diemcau.presence.hub import PresenceHub
from diemcau.store import Database
from tests.browser import STAFF_PASSWORD, live_server
from tests.presence_support import RawSite, eventually


async def _token(base: str, username: str) -> str:
    async with httpx.AsyncClient(base_url=base) as client:
        r = await client.post(
            "/api/auth/login", json={"username": username, "password": STAFF_PASSWORD}
        )
        assert r.status_code == 200, r.text
        return str(r.json()["token"])


async def _site_token(base: str, join_code: str) -> str:
    async with httpx.AsyncClient(base_url=base) as client:
        r = await client.post("/api/auth/site-login", json={"join_code": join_code})
        assert r.status_code == 200, r.text
        return str(r.json()["token"])


def _ws_url(base: str) -> str:
    return base.replace("https://", "wss://").replace("http://", "ws://") + "/api/presence/staff"


async def _stream(base: str, token: str) -> ClientConnection:
    """Open the stream the way the pages do: the token in the first message."""
    ws = await connect(_ws_url(base), ping_interval=None)
    await ws.send(json.dumps({"type": "auth", "token": token}))
    return ws


async def _closed(ws: ClientConnection, timeout: float = 5.0) -> tuple[int, str]:
    await asyncio.wait_for(ws.wait_closed(), timeout)
    assert ws.protocol.close_rcvd is not None
    return ws.protocol.close_rcvd.code, ws.protocol.close_rcvd.reason


async def _next(ws: ClientConnection, want: str = "delta") -> dict[str, Any]:
    while True:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if frame["type"] == want:
            return frame


def _rows(frame: dict[str, Any]) -> dict[str, dict[str, Any]]:
    fields = frame.get("fields") or [
        "id", "code", "name", "province_id", "state", "reason", "since",
        "rtt_ms", "loss_pct", "jitter_ms", "in_meeting", "recv_kbps", "media",
    ]  # fmt: skip
    return {row[1]: dict(zip(fields, row, strict=True)) for row in frame["sites"]}


async def test_staff_stream_snapshot_deltas_scope_and_refusals(tmp_path: Path) -> None:
    async with live_server(tmp_path, join_sites=("00004", "00008", "26734")) as srv:
        hub = srv.runtime.presence
        assert isinstance(hub, PresenceHub)
        async with httpx.AsyncClient(base_url=srv.base_url) as client:
            info = (await client.get("/api/presence/info")).json()
        assert info["url"] == hub.url and info["protocol_version"] == 2

        chair = await _stream(srv.base_url, await _token(srv.base_url, "chair"))
        snap = await _next(chair, "snapshot")
        rows = _rows(snap)
        assert {"00004", "00008", "26734", "01", "79"} <= set(rows)
        assert all(r["state"] == "offline" for r in rows.values())
        total = snap["national"]["total"]
        assert total == len(rows) and snap["national"]["offline"] == total
        hanoi_id = rows["00004"]["province_id"]
        hcm_id = rows["26734"]["province_id"]

        officer = await _stream(srv.base_url, await _token(srv.base_url, "hanoi"))
        osnap = await _next(officer, "snapshot")
        assert "national" not in osnap
        assert set(osnap["provinces"]) == {str(hanoi_id)}
        assert {r["province_id"] for r in _rows(osnap).values()} == {hanoi_id}

        # Many changes inside one batch window arrive together, coalesced.
        sites = [RawSite(hub) for _ in range(3)]
        for site, code in zip(sites, ("00004", "00008", "26734"), strict=True):
            await site.connect(join_code=srv.join_codes[code])
        seen: dict[str, dict[str, Any]] = {}
        national: dict[str, Any] = {}
        while len(seen) < 3 or national.get("online") != 3:
            delta = await _next(chair)
            seen.update({c: r for c, r in _rows(delta).items() if r["state"] == "online"})
            national = delta["national"]
        assert set(seen) == {"00004", "00008", "26734"}
        assert national["offline"] == total - 3

        odelta = await _next(officer)
        assert {r["province_id"] for r in _rows(odelta).values()} <= {hanoi_id}

        await hub.publish_staff_event("alert.raised", {"site": "26734"}, province_id=hcm_id)
        await hub.publish_staff_event("meeting.started", {"meeting_id": 1})
        await hub.follow("meeting:1", [s.welcome["site_id"] for s in sites])
        chair_events: list[dict[str, Any]] = []
        in_meeting = 0
        while len(chair_events) < 2 or in_meeting != 3:
            delta = await _next(chair)
            chair_events += delta["events"]
            in_meeting = delta["national"]["in_meeting"]
        assert [e["kind"] for e in chair_events] == ["alert.raised", "meeting.started"]
        officer_events: list[dict[str, Any]] = []
        while not officer_events:
            officer_events += (await _next(officer))["events"]
        assert [e["kind"] for e in officer_events] == ["meeting.started"]

        # A silent site turns offline on the dashboard.
        sites[0].silence()
        await eventually(lambda: not hub.is_online(sites[0].welcome["site_id"]), timeout=5)
        while True:
            rows = _rows(await _next(chair))
            if rows.get("00004", {}).get("state") == "offline":
                break
        assert rows["00004"]["reason"] == "heartbeat_timeout"

        # Refusals: a site token and a garbage token.
        site_token = await _site_token(srv.base_url, srv.join_codes["00008"])
        for token, close_code in ((site_token, 4003), ("garbage", 4001)):
            ws = await _stream(srv.base_url, token)
            await asyncio.wait_for(ws.wait_closed(), 5)
            assert ws.protocol.close_rcvd is not None
            assert ws.protocol.close_rcvd.code == close_code
        for s in sites[1:]:
            await s.close()
        await chair.close()
        await officer.close()


async def test_hundreds_of_changes_are_coalesced(db: Database) -> None:
    """200 sites leaving at once reach a dashboard as a few deltas, not 200 frames."""
    from diemcau.presence.hub import PresenceHub as Hub
    from diemcau.sim.sites import SimOptions, Swarm
    from tests.presence_support import fast_config, make_sites

    key = await db.secret_key()
    d = await make_sites(db, key, per_province=50, provinces=4)
    hub = Hub(db, key, fast_config(staff_batch_s=0.25))
    await hub.start()
    try:
        stop = asyncio.Event()
        swarm = Swarm(hub.url, [d.codes[s] for s in d.site_ids], SimOptions(summary_s=0))
        run = asyncio.create_task(swarm.run(stop=stop))
        await eventually(lambda: len(hub.online_site_ids()) == 200, timeout=15)
        client = hub.staff.subscribe(None)
        first = await asyncio.wait_for(client.queue.get(), 5)
        assert first is not None
        snapshot = json.loads(first)
        assert snapshot["national"]["online"] == 200
        stop.set()  # every site says bye at once
        await run
        frames: list[dict[str, Any]] = []
        offline: set[int] = set()
        while len(offline) < 200:
            frame = await asyncio.wait_for(client.queue.get(), 5)
            assert frame is not None
            frames.append(json.loads(frame))
            offline |= {row[0] for row in frames[-1]["sites"] if row[4] == "offline"}
        assert len(frames) <= 4, f"{len(frames)} deltas for 200 changes"
        assert frames[-1]["national"]["offline"] == 200
        hub.staff.unsubscribe(client)
    finally:
        await hub.stop()


async def test_the_token_never_rides_in_the_url_and_is_checked_again_while_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bad inputs: the token in the query string (even a valid one), no auth message, a
    first message that is not auth, binary and non-JSON first frames; then an account
    disabled, a logout and a password reset while their streams are open."""
    from diemcau.accounts.service import disable_staff
    from diemcau.api import presence_routes

    monkeypatch.setattr(presence_routes, "AUTH_TIMEOUT_S", 0.5)
    monkeypatch.setattr(presence_routes, "RECHECK_S", 0.2)
    staff = (
        ("chair", "chair", None),
        ("ops", "operator", None),
        ("admin", "admin", None),
        ("hanoi", "province_officer", "01"),
    )
    async with live_server(tmp_path, staff=staff, tls=False) as srv:
        base = srv.base_url
        token = await _token(base, "chair")
        ws = await connect(_ws_url(base) + f"?token={token}", ping_interval=None)
        code, reason = await _closed(ws)
        assert code == 4001 and "URL" in reason
        for first in (None, '{"type": "hello"}', b"\x00\x01", "not json", '{"type": "auth"}'):
            ws = await connect(_ws_url(base), ping_interval=None)
            if first is not None:
                await ws.send(first)
            assert (await _closed(ws))[0] == 4001, first
        # Scripts may send the header instead of the message.
        ws = await connect(_ws_url(base), additional_headers={"Authorization": f"Bearer {token}"})
        assert (await _next(ws, "snapshot"))["type"] == "snapshot"
        await ws.close()

        # A disabled account loses its stream within the re-check interval (0.2 s here).
        ops = await _stream(base, await _token(base, "ops"))
        await _next(ops, "snapshot")
        await disable_staff(srv.runtime.db, "ops")
        code, reason = await _closed(ops, timeout=3.0)
        assert code == 4001 and "session ended" in reason

        # Logging out ends every stream of the account, on every device.
        officer_token = await _token(base, "hanoi")
        first_pc = await _stream(base, officer_token)
        second_pc = await _stream(base, officer_token)
        for ws in (first_pc, second_pc):
            await _next(ws, "snapshot")
        async with httpx.AsyncClient(base_url=base) as client:
            r = await client.post(
                "/api/auth/logout", headers={"Authorization": f"Bearer {officer_token}"}
            )
            assert r.status_code == 204
            r = await client.get(
                "/api/auth/me", headers={"Authorization": f"Bearer {officer_token}"}
            )
            assert r.status_code == 401
        for ws in (first_pc, second_pc):
            assert (await _closed(ws, timeout=3.0))[0] == 4001

        # An administrator's password reset ends the chair's open stream.
        chair = await _stream(base, token)
        await _next(chair, "snapshot")
        admin = await _token(base, "admin")
        async with httpx.AsyncClient(base_url=base) as client:
            r = await client.post(
                "/api/admin/staff/chair/password",
                json={"password": "a brand new one"},
                headers={"Authorization": f"Bearer {admin}"},
            )
            assert r.status_code == 200, r.text
        assert (await _closed(chair, timeout=3.0))[0] == 4001
