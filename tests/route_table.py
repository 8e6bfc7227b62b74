"""Every HTTP route of the app, with who may call it (docs/architecture.md: role-checked).

The table `ROUTES` names each route once, with who may call it and, for a
province officer of Hồ Chí Minh City (79) and the site Phường Bến Nghé (26734,
also in 79), what happens when they reach for Hà Nội's (01) data: refused
(403/404), scoped (200 without any Hà Nội row) or allowed (national, read-only
data every staff member sees). `Route.admitted()` says which staff roles a
route's role gate lets through at all. Two tests read it: `test_api_roles.py`
walks each route with each caller, and `test_fuzz_api.py` derives from it what
a fuzzed request must never be granted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.routing import APIRoute, APIWebSocketRoute

from diemcau.api.app import ROUTERS, create_app
from diemcau.config import Settings
from diemcau.directory.records import UnitRecord
from diemcau.runtime import Runtime
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

STAFF_ROLES = frozenset({"admin", "chair", "operator", "province_officer"})
# Role gates narrower than "every staff role" (or every role but the officer's).
ADMIN = ("admin",)
CREDENTIALS = ("admin", "operator", "province_officer")


@dataclass(frozen=True)
class Route:
    """One route and what each caller may do with it.

    `url` and `body` are templates filled from `World.ids` (Hà Nội's resources).
    `officer`: what the HCMC province officer gets (``role``: refused by role).
    `site`: what site 26734 gets on a site or any-caller route.
    `roles`: the staff roles the route's role gate admits, when narrower than
    every role (or every role but the province officer's when `officer` is
    ``role``).
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
    roles: tuple[str, ...] = ()

    def admitted(self) -> frozenset[str]:
        """The staff roles that may ever be answered 2xx here (scope is checked after)."""
        if self.access in ("public", "site"):
            return frozenset() if self.access == "site" else STAFF_ROLES
        if self.roles:
            return frozenset(self.roles)
        if self.officer == "role":
            return STAFF_ROLES - {"province_officer"}
        return STAFF_ROLES

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
_INS = "/api/inspections/{inspection_id}"
# What an unknown id (404) or unknown site code in a body (422) gets; out of reach alike.
_HIDDEN = (404,)
_UNKNOWN_CODE = (422,)
_ROUND = "/api/inspection/rounds/{round_id}"

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
        roles=("admin", "operator"),
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
        roles=ADMIN,
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
    Route(
        "POST",
        "/api/command/reports",
        "any",
        officer="refused",
        site="refused",
        body={"schema": "covid19", "values": covid(new_cases=1), "site_code": "00004"},
        # A site code out of the caller's reach reads like an unknown one (422 no_site),
        # so a refusal never tells which codes exist elsewhere (tests/test_scope_leaks.py).
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
        roles=("admin", "chair", "province_officer"),
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
    Route("GET", "/api/admin/process", "staff", officer="role", roles=ADMIN),
    Route("GET", "/api/admin/staff", "staff", officer="role", roles=ADMIN),
    Route(
        "POST",
        "/api/admin/staff",
        "staff",
        officer="role",
        body={"username": "x9", "password": "long-enough", "role": "operator"},
        roles=ADMIN,
    ),
    Route(
        "PATCH",
        "/api/admin/staff/{username}",
        "staff",
        url="/api/admin/staff/hn",
        officer="role",
        body={},
        roles=ADMIN,
    ),
    Route(
        "POST",
        "/api/admin/staff/{username}/password",
        "staff",
        url="/api/admin/staff/hn/password",
        officer="role",
        body={"password": "long-enough"},
        roles=ADMIN,
    ),
    Route("GET", "/api/admin/sites", "staff", officer="scoped", roles=CREDENTIALS),
    Route(
        "POST",
        "/api/admin/sites/{code}/sheet",
        "staff",
        url="/api/admin/sites/00004/sheet",
        officer="refused",
        roles=CREDENTIALS,
    ),
    Route("POST", "/api/admin/schemas", "staff", officer="role", body={"key": "x"}, roles=ADMIN),
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
        roles=CREDENTIALS,
    ),
    Route(
        "POST",
        "/api/directory/sites/{code}/revoke",
        "staff",
        url="/api/directory/sites/00004/revoke",
        officer="refused",
        roles=CREDENTIALS,
    ),
    Route(
        "GET",
        "/api/media/sites/{code}",
        "staff",
        url="/api/media/sites/00004",
        officer="refused",
    ),
    # online inspection: another province's site or record is answered like an unknown one
    Route(
        "POST",
        "/api/inspections",
        "staff",
        officer="refused",
        refused_with=_HIDDEN,
        body={"site_code": "00004"},
    ),
    Route("GET", "/api/inspections", "staff", officer="scoped"),
    Route(
        "GET",
        "/api/inspections/export",
        "staff",
        url="/api/inspections/export?format=csv",
        officer="scoped",
    ),
    Route("GET", _INS, "staff", officer="refused", refused_with=_HIDDEN),
    Route("POST", _INS + "/keepalive", "staff", officer="refused", refused_with=_HIDDEN),
    Route("POST", _INS + "/end", "staff", officer="refused", refused_with=_HIDDEN),
    Route("POST", _INS + "/call", "staff", officer="refused", refused_with=_HIDDEN),
    Route("POST", _INS + "/call/end", "staff", officer="refused", refused_with=_HIDDEN),
    Route(
        "POST",
        "/api/inspection/wall",
        "staff",
        officer="refused",
        refused_with=_UNKNOWN_CODE,
        body={"sites": ["00004"]},
    ),
    Route(
        "DELETE",
        "/api/inspection/wall/{wall_id}",
        "staff",
        url="/api/inspection/wall/nowall",
        officer="refused",
        refused_with=_HIDDEN,
    ),
    Route("GET", "/api/inspection/summary", "staff", officer="scoped"),
    Route(
        "POST",
        "/api/inspection/rounds",
        "staff",
        officer="refused",
        refused_with=_UNKNOWN_CODE,
        body={"title": "x", "sites": ["00004"]},
    ),
    Route("GET", "/api/inspection/rounds", "staff", officer="scoped"),
    Route("GET", _ROUND, "staff", officer="refused", refused_with=_HIDDEN),
    Route(
        "PUT",
        _ROUND + "/items/{item_id}",
        "staff",
        officer="refused",
        refused_with=_HIDDEN,
        body={"verdict": "pass"},
    ),
    Route(
        "PUT",
        _ROUND + "/items/{item_id}/snapshot",
        "staff",
        officer="refused",
        refused_with=_HIDDEN,
        raw=b"\xff\xd8\xff\xe0 not really an image",
    ),
    Route(
        "GET",
        _ROUND + "/items/{item_id}/snapshot",
        "staff",
        officer="refused",
        refused_with=_HIDDEN,
    ),
    Route("POST", _ROUND + "/close", "staff", officer="refused", refused_with=_HIDDEN),
    Route("GET", _ROUND + "/report.html", "staff", officer="refused", refused_with=_HIDDEN),
    Route(
        "GET",
        _ROUND + "/report.{fmt}",
        "staff",
        url="/api/inspection/rounds/{round_id}/report.csv",
        officer="refused",
        refused_with=_HIDDEN,
    ),
    Route("GET", "/api/site/inspection", "site"),
    Route("GET", "/inspection", "public"),
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


def unstarted_app() -> FastAPI:
    """The app as built for a runtime that is never started (default settings only):
    enough for its route table and OpenAPI document."""
    runtime = Runtime.__new__(Runtime)
    runtime.settings = Settings()
    return create_app(runtime)
