"""Every HTTP route, walked with every kind of caller (docs/architecture.md: role-checked).

The table `ROUTES` names each route of the app once, with who may call it and,
for a province officer of Hồ Chí Minh City (79) and the site Phường Bến Nghé
(26734, also in 79), what happens when they reach for Hà Nội's (01) data:
refused (403/404), scoped (200 without any Hà Nội row) or allowed (national,
read-only data every staff member sees). A route added to the app without a row
here fails `test_every_route_is_in_the_table`.

Callers tried on every non-public route: no token (401), a garbage token (401),
a site token on staff routes (403), a staff token on site routes (403), the
province officer on role-gated routes (403) and on Hà Nội's resources, the site
on another site's data. Every error body is ``{"error": {"code", "message"}}``
and no body contains a Python traceback.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx
import pytest
from fastapi.routing import APIRoute, APIWebSocketRoute
from sqlalchemy import select

from diemcau.accounts.service import create_staff, rotate_site
from diemcau.api import create_app
from diemcau.api.app import ROUTERS
from diemcau.config import Settings
from diemcau.directory import service
from diemcau.directory.records import UnitRecord
from diemcau.runtime import Runtime
from diemcau.store.models import Site, Unit
from diemcau.wiring import build_runtime
from tests.browser import HeartbeatSite
from tests.site_session import open_session
from tests.test_command_support import covid

PASSWORD = "correct horse battery"
TREE = [
    UnitRecord(code="VN", name="Việt Nam", level="country"),
    UnitRecord(code="79", name="Thành phố Hồ Chí Minh", level="province", parent_code="VN"),
    UnitRecord(code="26734", name="Phường Bến Nghé", level="commune", parent_code="79"),
    UnitRecord(code="26737", name="Phường Bến Thành", level="commune", parent_code="79"),
    UnitRecord(code="01", name="Thành phố Hà Nội", level="province", parent_code="VN"),
    UnitRecord(code="00004", name="Phường Ba Đình", level="commune", parent_code="01"),
]

# Markers of Hà Nội data: a scoped answer to the HCMC officer must contain none.
HN_MARKERS = ("00004", "Ba Đình", "Hà Nội", "Chỉ thị riêng")

Access = Literal["public", "any", "staff", "site"]
Reach = Literal["refused", "scoped", "allowed", "role"]


@dataclass(frozen=True)
class Route:
    """One route and what each caller may do with it.

    `url` and `body` are templates filled from `World.ids` (Hà Nội's resources).
    `officer`: what the HCMC province officer gets (``role``: refused by role).
    `site`: what site 26734 gets on a site or any-caller route.
    """

    method: str
    path: str
    access: Access
    url: str = ""
    body: Any = None
    officer: Reach = "allowed"
    site: Reach = "allowed"
    raw: bytes | None = None
    refused_with: tuple[int, ...] = (403, 404)

    def target(self, ids: dict[str, Any]) -> str:
        return (self.url or self.path).format(**ids)


def _fill(value: Any, ids: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


_MEET = "/api/meetings/{meeting_id}"
# One valid line for Hà Nội's site.
CSV_HN = (
    b"site_code,new_cases,under_treatment,recovered,deaths,vaccine_doses,zone_level,"
    b"distancing_order\n00004,5,10,1,0,100,yellow,false\n"
)
_DIR = "/api/command/directives/{directive_id}"

ROUTES: tuple[Route, ...] = (
    # auth
    Route("POST", "/api/auth/login", "public"),
    Route("POST", "/api/auth/site-login", "public"),
    Route("GET", "/api/auth/me", "any"),
    # directory
    Route("GET", "/api/directory/stats", "staff", officer="scoped"),
    Route(
        "GET",
        "/api/directory/tree",
        "staff",
        url="/api/directory/tree?parent=01",
        officer="refused",
    ),
    Route(
        "GET",
        "/api/directory/search",
        "staff",
        url="/api/directory/search?q=ba dinh",
        officer="scoped",
    ),
    Route(
        "GET",
        "/api/directory/units/{code}",
        "staff",
        url="/api/directory/units/01",
        officer="refused",
    ),
    Route(
        "GET",
        "/api/directory/sites/{code}",
        "staff",
        url="/api/directory/sites/00004",
        officer="refused",
    ),
    # presence
    Route("GET", "/api/presence/info", "public"),
    Route(
        "GET",
        "/api/presence/sites/{site_id}",
        "staff",
        url="/api/presence/sites/{hn_site}",
        officer="refused",
    ),
    Route(
        "POST",
        "/api/presence/sites/{site_id}/close",
        "staff",
        url="/api/presence/sites/{hn_site}/close",
        officer="role",
    ),
    # meetings (staff)
    Route("GET", "/api/meetings", "staff"),
    Route(
        "POST",
        "/api/meetings",
        "staff",
        officer="role",
        body={"title": "x", "invite": {"units": ["01"]}},
    ),
    Route("POST", "/api/meetings/invites/preview", "staff", officer="role", body={"units": ["01"]}),
    Route("GET", _MEET, "staff"),
    Route("PATCH", _MEET, "staff", officer="refused", body={"title": "đổi tên"}),
    Route("PUT", _MEET + "/invites", "staff", officer="refused", body={"everyone": True}),
    Route(
        "POST", _MEET + "/start", "staff", url="/api/meetings/{draft_id}/start", officer="refused"
    ),
    Route("POST", _MEET + "/end", "staff", officer="refused"),
    Route("POST", _MEET + "/extend", "staff", officer="refused", body={"minutes": 5}),
    Route("GET", _MEET + "/floor", "staff"),
    # The queue, like the floor, is the meeting's own state every staff console shows.
    Route("GET", _MEET + "/queue", "staff"),
    Route(
        "POST", _MEET + "/floor/grant", "staff", officer="refused", body={"site_codes": ["00004"]}
    ),
    Route("POST", _MEET + "/floor/revoke", "staff", officer="refused", body={}),
    Route("POST", _MEET + "/floor/next", "staff", officer="refused"),
    Route("POST", _MEET + "/floor/mute-all", "staff", officer="refused"),
    Route("POST", _MEET + "/floor/allow-unmute", "staff", officer="refused"),
    Route("GET", _MEET + "/attendance", "staff", officer="scoped"),
    Route("GET", _MEET + "/attendance/sites", "staff", officer="scoped"),
    Route("GET", _MEET + "/attendance/report.csv", "staff", officer="scoped"),
    Route("GET", _MEET + "/attendance/report.html", "staff", officer="scoped"),
    # XLSX is zipped: its province scope is checked by opening it (test_exports_xlsx.py).
    Route("GET", _MEET + "/attendance/report.xlsx", "staff", officer="scoped"),
    Route("POST", _MEET + "/conclusions", "staff", officer="refused", body={"body": "Kết luận"}),
    Route("GET", _MEET + "/conclusions", "staff"),
    Route("GET", "/api/conclusions/{conclusion_id}/status", "staff", officer="scoped"),
    Route(
        "GET", "/api/conclusions/{conclusion_id}/acknowledgements.csv", "staff", officer="scoped"
    ),
    Route(
        "GET", "/api/conclusions/{conclusion_id}/acknowledgements.xlsx", "staff", officer="scoped"
    ),
    Route("GET", "/api/audit", "staff", officer="role"),
    Route("GET", "/api/audit/export.csv", "staff", officer="role"),
    Route("GET", "/api/audit/export.xlsx", "staff", officer="role"),
    # recording: who may see which file of a meeting (docs/recording.md)
    Route("GET", _MEET + "/recording", "staff", officer="scoped"),
    Route(
        "PUT", _MEET + "/recording/policy", "staff", officer="refused", body={"retention_days": 9}
    ),
    Route("GET", "/api/recordings/storage", "staff", officer="role"),
    # A Hà Nội speaker's clip: never for the Hồ Chí Minh City officer.
    Route("GET", "/api/recordings/{file_id}", "staff", officer="refused"),
    Route("POST", "/api/recordings/{file_id}/ticket", "staff", officer="refused"),
    # Authorised by the file-bound ticket in its URL (a <video> sends no token): a
    # missing or forged ticket is refused whoever asks (test_recording_media.py).
    Route(
        "GET",
        "/api/recordings/{file_id}/watch",
        "public",
        url="/api/recordings/{file_id}/watch?ticket=forged.ticket",
    ),
    Route(
        "DELETE",
        "/api/recordings/{file_id}",
        "staff",
        url="/api/recordings/{file_id}?reason=test",
        officer="role",
    ),
    Route("GET", _MEET + "/timeline", "staff", officer="scoped"),
    Route("GET", _MEET + "/minutes", "staff", officer="refused"),
    Route(
        "PUT",
        _MEET + "/minutes",
        "staff",
        officer="refused",
        body={"texts": {"summary": "x"}, "version": 0},
    ),
    Route("POST", _MEET + "/minutes/publish", "staff", officer="refused"),
    Route("GET", _MEET + "/minutes.pdf", "staff", officer="refused"),
    Route("GET", _MEET + "/minutes.html", "staff", officer="refused"),
    Route("GET", "/api/site-groups", "staff"),
    Route(
        "POST",
        "/api/site-groups",
        "staff",
        officer="role",
        body={"name": "g2", "invite": {"units": ["01"]}},
    ),
    Route("PATCH", "/api/site-groups/{group_id}", "staff", officer="role", body={"name": "g3"}),
    Route("DELETE", "/api/site-groups/{group_id}", "staff", officer="role"),
    # meetings (site)
    # A site outside every live meeting gets 200 with no meeting (not an error).
    Route("GET", "/api/site/meetings/current", "site", site="scoped"),
    Route("POST", "/api/site/meetings/{meeting_id}/join", "site", site="refused"),
    Route("POST", "/api/site/meetings/{meeting_id}/leave", "site", site="refused"),
    Route("POST", "/api/site/meetings/{meeting_id}/hand", "site", site="refused"),
    Route("DELETE", "/api/site/meetings/{meeting_id}/hand", "site", site="refused"),
    Route("POST", "/api/site/conclusions/{conclusion_id}/ack", "site", site="refused"),
    # Only published minutes, only to a site that took part (this one did not).
    Route("GET", "/api/site/meetings/{meeting_id}/minutes.pdf", "site", site="refused"),
    Route("GET", "/api/site/meetings/{meeting_id}/minutes.html", "site", site="refused"),
    # command
    Route("GET", "/api/command/schemas", "any"),
    Route("GET", "/api/command/schemas/{key}", "any", url="/api/command/schemas/covid19"),
    # A site code out of the caller's reach reads like an unknown one (422 no_site), so
    # a refusal never tells which codes exist elsewhere (tests/test_scope_leaks.py).
    Route(
        "POST",
        "/api/command/reports",
        "any",
        officer="refused",
        site="refused",
        body={"schema": "covid19", "values": covid(new_cases=1), "site_code": "00004"},
        refused_with=(422,),
    ),
    Route(
        "GET",
        "/api/command/reports",
        "any",
        url="/api/command/reports?schema=covid19&site_code=00004",
        officer="refused",
        site="refused",
        refused_with=(422,),
    ),
    Route("GET", "/api/command/reports/{report_id}", "any", officer="refused", site="refused"),
    Route(
        "PATCH",
        "/api/command/reports/{report_id}",
        "any",
        officer="refused",
        site="refused",
        body={"values": {"new_cases": 99}},
    ),
    Route(
        "GET", "/api/command/reports/{report_id}/history", "any", officer="refused", site="refused"
    ),
    Route(
        "POST",
        "/api/command/reports/import",
        "staff",
        url="/api/command/reports/import?schema=covid19&period={period}",
        officer="refused",
        raw=CSV_HN,
        refused_with=(422,),
    ),  # the line is named: not in your province
    Route(
        "GET",
        "/api/command/status",
        "staff",
        url="/api/command/status?schema=covid19&province_id={hn_province}",
        officer="refused",
    ),
    Route(
        "GET",
        "/api/command/aggregate",
        "staff",
        url="/api/command/aggregate?schema=covid19&province_id={hn_province}",
        officer="refused",
    ),
    Route(
        "GET",
        "/api/command/series",
        "staff",
        url="/api/command/series?schema=covid19&indicator=new_cases&province_id={hn_province}",
        officer="refused",
    ),
    Route(
        "GET",
        "/api/command/map",
        "staff",
        url="/api/command/map?schema=covid19&indicator=new_cases&province_id={hn_province}",
        officer="refused",
    ),
    Route(
        "GET",
        "/api/command/export",
        "staff",
        url="/api/command/export?schema=covid19&what=reports&province_id={hn_province}",
        officer="refused",
    ),
    Route(
        "POST",
        "/api/command/directives",
        "staff",
        officer="refused",
        body={"title": "t", "body": "b", "target": {"provinces": ["01"]}},
    ),
    Route("GET", "/api/command/directives", "staff", officer="scoped"),
    Route("GET", "/api/command/directives/overdue", "staff", officer="scoped"),
    Route("GET", _DIR, "staff", officer="refused"),
    Route("GET", _DIR + "/recipients", "staff", officer="refused"),
    Route("POST", _DIR + "/remind", "staff", officer="refused", body={}),
    Route("POST", _DIR + "/escalate", "staff", officer="refused", body={}),
    Route("GET", "/api/command/inbox", "site", site="scoped"),
    # command: the directives page
    Route(
        "POST",
        "/api/command/files",
        "staff",
        url="/api/command/files?name=note.txt",
        raw=b"site_code\n",
    ),
    # Public: the signed link is the permission (a wrong signature is a missing file).
    Route("GET", "/api/command/files/{file_id}", "public", url="/api/command/files/1?sig=x"),
    Route(
        "POST",
        "/api/command/directives/preview",
        "staff",
        officer="refused",
        body={"target": {"provinces": ["01"]}},
    ),
    Route(
        "POST",
        "/api/command/directives/compose",
        "staff",
        officer="refused",
        body={"directive": {"title": "t", "body": "b", "target": {"provinces": ["01"]}}},
    ),
    Route("GET", "/api/command/directive-table", "staff", officer="scoped"),
    Route("GET", _DIR + "/provinces", "staff", officer="refused"),
    # command: the situation-reports page
    Route(
        "GET",
        "/api/command/completeness",
        "staff",
        url="/api/command/completeness?schema=covid19",
        officer="scoped",
    ),
    Route(
        "GET",
        "/api/command/completeness/sites",
        "staff",
        url="/api/command/completeness/sites?schema=covid19&state=all&province_id={hn_province}",
        officer="refused",
    ),
    Route(
        "GET",
        "/api/command/completeness/trend",
        "staff",
        url="/api/command/completeness/trend?schema=covid19",
        officer="scoped",
    ),
    Route(
        "GET",
        "/api/command/reports/{report_id}/revisions",
        "any",
        officer="refused",
        site="refused",
    ),
    # command: the charts page
    Route(
        "GET",
        "/api/command/series-table",
        "staff",
        url="/api/command/series-table?schema=covid19&indicator=new_cases&site_code=00004",
        officer="refused",
        refused_with=(422,),
    ),
    Route(
        "GET",
        "/api/command/rankings",
        "staff",
        url="/api/command/rankings?schema=covid19&indicator=new_cases&level=commune",
        officer="scoped",
    ),
    Route(
        "GET",
        _DIR + "/sites",
        "staff",
        url=_DIR + "/sites?province_id={hn_province}",
        officer="refused",
    ),
    Route("POST", _DIR + "/ack", "site", site="refused"),
    Route("POST", _DIR + "/complete", "site", site="refused", body={"note": "xong"}),
    Route(
        "GET",
        "/api/command/alerts",
        "staff",
        url="/api/command/alerts?province_id={hn_province}",
        officer="refused",
    ),
    Route("POST", "/api/command/alerts/{alert_id}/ack", "staff", officer="refused"),
    Route(
        "GET",
        "/api/command/alert-table",
        "staff",
        url="/api/command/alert-table?state=all&province_id={hn_province}",
        officer="refused",
    ),
    # administration
    Route("GET", "/api/admin/staff", "staff", officer="role"),
    Route(
        "POST",
        "/api/admin/staff",
        "staff",
        officer="role",
        body={"username": "x9", "password": "long-enough", "role": "operator"},
    ),
    Route(
        "PATCH",
        "/api/admin/staff/{username}",
        "staff",
        url="/api/admin/staff/hn",
        officer="role",
        body={},
    ),
    Route(
        "POST",
        "/api/admin/staff/{username}/password",
        "staff",
        url="/api/admin/staff/hn/password",
        officer="role",
        body={"password": "long-enough"},
    ),
    Route("GET", "/api/admin/sites", "staff", officer="scoped"),
    Route(
        "POST",
        "/api/admin/sites/{code}/sheet",
        "staff",
        url="/api/admin/sites/00004/sheet",
        officer="refused",
    ),
    Route("POST", "/api/admin/schemas", "staff", officer="role", body={"key": "x"}),
    Route("GET", "/api/admin/schemas/{key}", "staff", url="/api/admin/schemas/covid19"),
    Route("GET", "/api/admin/site-groups", "staff"),
    # web pages and their data
    Route("GET", "/site", "public"),
    Route("GET", "/join", "public"),
    Route("GET", "/chair", "public"),
    Route("GET", "/dashboard", "public"),
    Route("GET", "/recordings", "public"),
    Route("GET", "/directives", "public"),
    Route("GET", "/reports", "public"),
    Route("GET", "/charts", "public"),
    Route("GET", "/alerts", "public"),
    Route("GET", "/admin", "public"),
    Route("GET", "/favicon.ico", "public"),
    Route("GET", "/api/web/config", "public"),
    Route("GET", "/api/web/geo", "staff", officer="scoped"),
    Route("GET", "/api/web/states", "staff", officer="scoped"),
    Route("GET", "/api/site/media", "site"),
    Route(
        "GET",
        "/api/media/chair",
        "staff",
        url="/api/media/chair?meeting_id={meeting_id}",
        officer="role",
    ),
    Route(
        "GET",
        "/api/media/spot/{site_code}",
        "staff",
        url="/api/media/spot/00004",
        officer="refused",
    ),
    Route("POST", "/api/media/wall", "staff", officer="refused", body={"sites": ["00004"]}),
    Route("GET", "/api/media/status", "staff", officer="role"),
    Route(
        "POST",
        "/api/directory/sites/{code}/rotate",
        "staff",
        url="/api/directory/sites/00004/rotate",
        officer="refused",
    ),
    Route(
        "POST",
        "/api/directory/sites/{code}/revoke",
        "staff",
        url="/api/directory/sites/00004/revoke",
        officer="refused",
    ),
    Route(
        "GET",
        "/api/media/sites/{code}",
        "staff",
        url="/api/media/sites/00004",
        officer="refused",
    ),
    # app-level
    Route("GET", "/", "public"),
    Route("GET", "/healthz", "public"),
    # Last: they end the caller's sessions (a wrong current password changes nothing).
    Route(
        "POST",
        "/api/auth/password",
        "staff",
        body={"old_password": "not it", "new_password": "long enough again"},
    ),
    Route("POST", "/api/auth/logout", "staff"),
)

# Routes outside the table, with the reason.
NOT_WALKED = {
    # A WebSocket (httpx's ASGI transport speaks HTTP only); its token and role
    # checks (4001 bad token, 4003 site token) are tested in test_presence_staff.py.
    ("WS", "/api/presence/staff"),
}

# FastAPI's own documentation routes and the static mount: public by design.
FRAMEWORK_PUBLIC = {
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/static",
    "/static-offline-docs",
}


def app_routes(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every route the app serves, routers included."""
    out: set[tuple[str, str]] = set()
    candidates: list[Any] = [r for m in ROUTERS for r in m.router.routes]
    candidates += [r for r in app.routes if getattr(r, "path", None)]
    for r in candidates:
        if getattr(r, "path", None) in FRAMEWORK_PUBLIC:
            continue
        if isinstance(r, APIWebSocketRoute):
            out.add(("WS", r.path))
        elif isinstance(r, APIRoute):
            out |= {(m, r.path) for m in (r.methods or ()) if m != "HEAD"}
        else:
            out |= {(m, r.path) for m in (getattr(r, "methods", None) or {"GET"}) if m != "HEAD"}
    return out


@dataclass
class World:
    client: httpx.AsyncClient
    runtime: Runtime
    ids: dict[str, Any]
    tokens: dict[str, dict[str, str]] = field(default_factory=dict)


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


@pytest.fixture
async def world(sqlite_url: str) -> AsyncIterator[World]:
    async with build_world(sqlite_url) as w:
        yield w


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
            w = World(client=c, runtime=runtime, ids={})
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
            # A site joins only while its session is up (issue 12, item 5).
            sessions.append(await open_session(runtime, "00004", joins["00004"]))
            ok(await c.post(f"/api/site/meetings/{mid}/join", headers=ba_dinh))
            ok(await c.post(f"/api/site/meetings/{mid}/hand", headers=ba_dinh))
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
            file_id = await _hn_clip(runtime, mid, hn_site, hn_province)
            w.ids = {
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


def assert_error(r: httpx.Response, *statuses: int) -> None:
    assert r.status_code in statuses, (r.request.method, str(r.request.url), r.status_code, r.text)
    err = r.json()["error"]
    assert isinstance(err["code"], str) and err["code"]
    assert isinstance(err["message"], str) and err["message"]
    assert "Traceback" not in r.text


async def call(w: World, route: Route, headers: dict[str, str] | None) -> httpx.Response:
    kwargs: dict[str, Any] = {"headers": dict(headers or {})}
    if route.raw is not None:
        kwargs["content"] = route.raw
        kwargs["headers"]["Content-Type"] = "text/csv"
    elif route.body is not None:
        kwargs["json"] = _fill(route.body, w.ids)
    r = await w.client.request(route.method, route.target(w.ids), **kwargs)
    assert "Traceback" not in r.text
    assert r.status_code < 500, (route.method, route.path, r.status_code, r.text)
    return r


def test_every_route_is_in_the_table() -> None:
    """A new route must be added to `ROUTES` (or `NOT_WALKED`, with its reason)."""
    app = create_app(Runtime.__new__(Runtime))
    table = {(r.method, r.path) for r in ROUTES}
    assert len(table) == len(ROUTES), "a route is listed twice"
    assert table | NOT_WALKED == app_routes(app)


async def test_no_token_and_bad_token_are_refused(world: World) -> None:
    for route in ROUTES:
        if route.access == "public":
            continue
        for headers in (None, {"Authorization": "Bearer not.a.token"}):
            assert_error(await call(world, route, headers), 401)


async def test_a_site_token_never_reaches_staff_routes(world: World) -> None:
    for route in ROUTES:
        if route.access == "staff":
            assert_error(await call(world, route, world.tokens["26734"]), 403)


async def test_a_staff_token_never_acts_as_a_site(world: World) -> None:
    for route in ROUTES:
        if route.access == "site":
            for who in ("chair", "admin", "hcm"):
                assert_error(await call(world, route, world.tokens[who]), 403)


def check_reach(route: Route, reach: Reach, r: httpx.Response) -> str | None:
    """None if `r` is what `reach` promises, else what went wrong."""
    try:
        if reach == "role":
            assert_error(r, 403)
        elif reach == "refused":
            assert_error(r, *route.refused_with)
        elif reach == "scoped":
            assert r.status_code == 200, r.text
            leaked = [m for m in HN_MARKERS if m in r.text]
            assert not leaked, f"leaks {leaked}: {r.text[:200]}"
        elif r.status_code >= 400:
            assert_error(r, r.status_code)
    except AssertionError as exc:
        return f"{route.method} {route.path} ({reach}): {exc}"
    return None


async def test_province_officer_stays_in_its_province(world: World) -> None:
    failures = []
    for route in ROUTES:
        if route.access in ("staff", "any"):
            r = await call(world, route, world.tokens["hcm"])
            failures.append(check_reach(route, route.officer, r))
    assert not any(failures), "\n".join(f for f in failures if f)


async def test_a_site_sees_and_acts_only_for_itself(world: World) -> None:
    failures = []
    for route in ROUTES:
        if route.access in ("site", "any"):
            r = await call(world, route, world.tokens["26734"])
            failures.append(check_reach(route, route.site, r))
    assert not any(failures), "\n".join(f for f in failures if f)


async def test_unfiltered_views_are_scoped_too(world: World) -> None:
    """Without a province filter, the officer's totals leave Hà Nội's report out (the
    chair's include it), and a site's report list holds only its own reports."""
    c, ids = world.client, world.ids
    p = ids["period"]
    agg = f"/api/command/aggregate?schema=covid19&from={p}&to={p}"
    series = f"/api/command/series?schema=covid19&indicator=new_cases&from={p}&to={p}"
    for who, cases in (("chair", 3), ("hcm", 0)):
        r = await c.get(agg, headers=world.tokens[who])
        assert r.json()["national"][0]["values"]["new_cases"]["value"] == cases, (who, r.text)
        r = await c.get(series, headers=world.tokens[who])
        assert r.json()["national"] == [cases], (who, r.text)
    for url in (agg, series, f"/api/command/export?schema=covid19&what=reports&from={p}&to={p}"):
        r = await c.get(url, headers=world.tokens["hcm"])
        assert r.status_code == 200 and not any(m in r.text for m in HN_MARKERS), r.text
    r = await c.get(
        f"/api/command/reports?schema=covid19&province_id={ids['hn_province']}",
        headers=world.tokens["26734"],
    )
    assert r.status_code in (200, 403) and "00004" not in r.text
    r = await c.get("/api/command/reports?schema=covid19", headers=world.tokens["00004"])
    assert [x["id"] for x in r.json()] == [ids["report_id"]]
    r = await c.get("/api/command/reports?schema=covid19", headers=world.tokens["26734"])
    assert r.json() == []
