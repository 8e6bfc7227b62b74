"""The API test world: Hà Nội owns every resource, and a token for every kind of caller.

Built once per test by `build_world` (a live meeting, a draft, a conclusion, a
report, a directive, an alert, a saved group, a recorded clip, all of Hà Nội
(01)); `World.ids` names them for the URL templates of `tests/route_table.py`,
and `World.tokens` holds the bearer headers of admin, chair, ops (operator),
hcm and hn (province officers of 79 and 01) and of the sites 26734, 26737
(Hồ Chí Minh City) and 00004 (Hà Nội).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from diemcau.accounts.service import create_staff, rotate_site
from diemcau.api import create_app
from diemcau.config import Settings
from diemcau.directory import service
from diemcau.runtime import Runtime
from diemcau.store.models import Site, Unit
from diemcau.wiring import build_runtime
from tests.browser import HeartbeatSite
from tests.route_table import PASSWORD, TREE
from tests.site_session import open_session
from tests.test_command_support import covid


@dataclass
class World:
    client: httpx.AsyncClient
    runtime: Runtime
    ids: dict[str, Any]
    tokens: dict[str, dict[str, str]] = field(default_factory=dict)
    app: FastAPI | None = None
    join_codes: dict[str, str] = field(default_factory=dict)


async def _login(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    r = await client.post("/api/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


async def _site_login(client: httpx.AsyncClient, join: str) -> dict[str, str]:
    r = await client.post("/api/auth/site-login", json={"join_code": join})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def ok(r: httpx.Response) -> Any:
    assert r.status_code in (200, 201), r.text
    return r.json()


@asynccontextmanager
async def build_world(url: str) -> AsyncIterator[World]:
    """Hà Nội owns every resource: a live meeting, a conclusion, a report, a directive, an alert."""
    runtime = await build_runtime(Settings(database_url=url, port=0))
    db = runtime.db
    await service.load_units(db, TREE, dataset="test")
    for name, role, prov in (
        ("admin", "admin", None),
        ("chair", "chair", None),
        ("ops", "operator", None),
        ("hcm", "province_officer", "79"),
        ("hn", "province_officer", "01"),
    ):
        await create_staff(db, name, PASSWORD, role, province_code=prov)
    joins = {c: await rotate_site(db, runtime.keys.site, c) for c in ("26734", "26737", "00004")}
    app = create_app(runtime)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        await runtime.start()
        sessions: list[HeartbeatSite] = []
        try:
            w = World(client=c, runtime=runtime, ids={}, app=app, join_codes=joins)
            for name in ("admin", "chair", "ops", "hcm", "hn"):
                w.tokens[name] = await _login(c, name)
            for code, join in joins.items():
                w.tokens[code] = await _site_login(c, join)
            chair, ops, ba_dinh = w.tokens["chair"], w.tokens["ops"], w.tokens["00004"]
            async with db.session() as s:
                hn_site = await s.scalar(select(Site.id).where(Site.code == "00004"))
                hn_province = await s.scalar(select(Unit.id).where(Unit.code == "01"))
            hn_meeting = {"title": "Họp riêng", "invite": {"units": ["01"], "kinds": ["commune"]}}
            mid = ok(await c.post("/api/meetings", json=hn_meeting, headers=chair))["id"]
            draft = ok(await c.post("/api/meetings", json=hn_meeting, headers=chair))["id"]
            ok(await c.post(f"/api/meetings/{mid}/start", headers=chair))
            cid = ok(
                await c.post(f"/api/meetings/{mid}/conclusions", json={"body": "KL"}, headers=chair)
            )["id"]
            schema = runtime.command.schemas.get("covid19")
            period = str(schema.period_of(datetime.fromtimestamp(runtime.clock(), UTC)))
            report = ok(
                await c.post(
                    "/api/command/reports",
                    json={"schema": "covid19", "period": period, "values": covid(new_cases=3)},
                    headers=ba_dinh,
                )
            )
            deadline = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
            directive = ok(
                await c.post(
                    "/api/command/directives",
                    json={
                        "title": "Chỉ thị riêng",
                        "body": "Chỉ gửi Hà Nội",
                        "deadline": deadline,
                        "target": {"provinces": ["01"]},
                    },
                    headers=chair,
                )
            )
            ok(await c.post(f"/api/command/directives/{directive['id']}/escalate", headers=chair))
            alerts = ok(await c.get("/api/command/alerts", headers=w.tokens["hn"]))
            [alert] = [a for a in alerts if a["kind"] == "directive_escalated"]
            group = ok(
                await c.post(
                    "/api/site-groups", json={"name": "g", "invite": {"units": ["01"]}}, headers=ops
                )
            )
            # An inspection of Ba Đình (no terminal open: not answered) and a round there.
            inspection = ok(
                await c.post("/api/inspections", json={"site_code": "00004"}, headers=chair)
            )["inspection"]
            hn_round = ok(
                await c.post(
                    "/api/inspection/rounds",
                    json={"title": "Đợt Hà Nội", "sites": ["00004"]},
                    headers=chair,
                )
            )
            file_id = await _hn_clip(runtime, mid, hn_site, hn_province)
            # Ba Đình joins the meeting and raises its hand, with its session up (a site
            # joins only with one: issue 12, item 5); last, so the inspection above
            # found no terminal open. The session stays up until the world ends.
            sessions.append(await open_session(runtime, "00004", joins["00004"]))
            ok(await c.post(f"/api/site/meetings/{mid}/join", headers=ba_dinh))
            ok(await c.post(f"/api/site/meetings/{mid}/hand", headers=ba_dinh))
            w.ids = {
                "inspection_id": inspection["id"],
                "round_id": hn_round["id"],
                "item_id": hn_round["items"][0]["id"],
                "file_id": file_id,
                "meeting_id": mid,
                "draft_id": draft,
                "conclusion_id": cid,
                "report_id": report["id"],
                "directive_id": directive["id"],
                "alert_id": alert["id"],
                "group_id": group["id"],
                "hn_site": hn_site,
                "hn_province": hn_province,
                "period": period,
            }
            yield w
        finally:
            for session in sessions:
                await session.close()
            await runtime.close()


async def _hn_clip(
    runtime: Runtime, meeting_id: int, site_id: int | None, province_id: int | None
) -> int:
    """A recorded intervention of Ba Đình (Hà Nội) in the meeting."""
    from diemcau.recording.models import RecordingFile

    async with runtime.db.session() as s:
        row = RecordingFile(
            meeting_id=meeting_id,
            kind="clip",
            site_id=site_id,
            site_code="00004",
            site_name="Phường Ba Đình",
            province_id=province_id,
            path=f"m{meeting_id}/clip-1-00004.webm",
            timing=[],
            content_type="video/webm",
            size=0,
            sha256="0" * 64,
        )
        s.add(row)
        await s.flush()
        return row.id
