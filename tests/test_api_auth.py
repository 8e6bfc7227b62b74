"""HTTP API: logins, roles, province scoping, and JSON errors without internals."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from diemcau.accounts.service import create_staff, rotate_site
from diemcau.directory.records import UnitRecord
from tests.api_support import PASSWORD, ApiEnv, api_env

STAFF = {"chair": ("chair", None), "hcm": ("province_officer", "79")}

TREE = [
    UnitRecord(code="VN", name="Việt Nam", level="country", unit_type="", parent_code=None),
    UnitRecord(
        code="79",
        name="Thành phố Hồ Chí Minh",
        level="province",
        unit_type="Thành phố",
        parent_code="VN",
        lat=10.8,
        lon=106.7,
    ),
    UnitRecord(
        code="26734",
        name="Phường Bến Nghé",
        level="commune",
        unit_type="Phường",
        parent_code="79",
        lat=10.78,
        lon=106.70,
    ),
    UnitRecord(
        code="01",
        name="Thành phố Hà Nội",
        level="province",
        unit_type="Thành phố",
        parent_code="VN",
        lat=21.0,
        lon=105.8,
    ),
    UnitRecord(
        code="00004",
        name="Phường Ba Đình",
        level="commune",
        unit_type="Phường",
        parent_code="01",
        lat=21.03,
        lon=105.83,
    ),
]


Env = ApiEnv


@pytest.fixture
async def env(sqlite_url: str) -> AsyncIterator[Env]:
    async with api_env(sqlite_url, TREE, ["26734"], STAFF) as e:
        yield e


async def test_staff_login_and_browse(env: Env) -> None:
    headers = await env.login("chair")
    me = (await env.client.get("/api/auth/me", headers=headers)).json()
    assert me["role"] == "chair" and me["kind"] == "staff"
    stats = (await env.client.get("/api/directory/stats", headers=headers)).json()
    assert stats["province"] == 2 and stats["commune"] == 2
    found = await env.client.get("/api/directory/search?q=phuong ben nghe", headers=headers)
    assert found.status_code == 200
    assert "Phường Bến Nghé" in found.text


async def test_bad_logins_are_refused_with_json_errors(env: Env) -> None:
    r = await env.client.post("/api/auth/login", json={"username": "chair", "password": "nope"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "bad_credentials"
    r = await env.client.post("/api/auth/login", json={"username": "chair"})  # missing field
    assert r.status_code == 422 and "password" in r.json()["error"]["message"]
    r = await env.client.post("/api/auth/site-login", json={"join_code": "26734:wrong"})
    assert r.status_code == 401
    r = await env.client.get("/api/directory/stats")  # no token
    assert r.status_code == 401 and r.json()["error"]["code"] == "no_token"
    r = await env.client.get("/api/directory/stats", headers={"Authorization": "Bearer x.y"})
    assert r.status_code == 401 and "Traceback" not in r.text


async def test_site_credential_is_refused_on_staff_endpoints(env: Env) -> None:
    r = await env.client.post("/api/auth/site-login", json={"join_code": env.join_codes["26734"]})
    assert r.status_code == 200, r.text
    session = r.json()
    assert session["kind"] == "site" and session["site_code"] == "26734"
    headers = {"Authorization": f"Bearer {session['token']}"}
    for path in ("/api/directory/stats", "/api/directory/tree", "/api/directory/sites/00004"):
        r = await env.client.get(path, headers=headers)
        assert r.status_code == 403, path
        assert r.json()["error"]["code"] == "staff_only"


async def test_rotated_site_token_is_refused(env: Env) -> None:
    r = await env.client.post("/api/auth/site-login", json={"join_code": env.join_codes["26734"]})
    headers = {"Authorization": f"Bearer {r.json()['token']}"}
    assert (await env.client.get("/api/auth/me", headers=headers)).status_code == 200
    await rotate_site(env.runtime.db, env.runtime.keys.site, "26734")
    r = await env.client.get("/api/auth/me", headers=headers)
    assert r.status_code == 401
    r = await env.client.post("/api/auth/site-login", json={"join_code": env.join_codes["26734"]})
    assert r.status_code == 401  # the old join code no longer works


async def test_province_officer_sees_only_its_province(env: Env) -> None:
    headers = await env.login("hcm")
    tree = (await env.client.get("/api/directory/tree", headers=headers)).text
    assert "Hồ Chí Minh" in tree and "Hà Nội" not in tree
    r = await env.client.get("/api/directory/sites/00004", headers=headers)  # a Hà Nội site
    assert r.status_code in (403, 404)
    r = await env.client.get("/api/directory/units/01", headers=headers)
    assert r.status_code in (403, 404)
    found = (await env.client.get("/api/directory/search?q=phuong", headers=headers)).text
    assert "Bến Nghé" in found and "Ba Đình" not in found
    r = await env.client.get("/api/directory/sites/26734", headers=headers)
    assert r.status_code == 200


async def test_openapi_and_index_page_are_served(env: Env) -> None:
    spec = (await env.client.get("/openapi.json")).json()
    assert "/api/auth/login" in spec["paths"] and "/api/directory/search" in spec["paths"]
    page = await env.client.get("/")
    assert page.status_code == 200 and "Danh bạ điểm cầu" in page.text


async def test_operator_rotates_and_revokes_credentials_and_live_sessions_close(env: Env) -> None:
    from diemcau.audit import AuditQuery, query_audit
    from tests.presence_support import RawSite

    await create_staff(env.runtime.db, "ops", PASSWORD, "operator")
    ops = await env.login("ops")
    hcm = await env.login("hcm")
    chair = await env.login("chair")
    site = RawSite(env.runtime.presence)
    await site.connect(join_code=env.join_codes["26734"])
    site.beat()

    # Who may not: a site token, the chair (no credential role), an officer elsewhere.
    r = await env.client.post("/api/auth/site-login", json={"join_code": env.join_codes["26734"]})
    site_headers = {"Authorization": f"Bearer {r.json()['token']}"}
    for headers, path in (
        (site_headers, "/api/directory/sites/26734/rotate"),
        (chair, "/api/directory/sites/26734/rotate"),
        (hcm, "/api/directory/sites/00004/rotate"),  # a Hà Nội site
        (ops, "/api/directory/sites/nope/rotate"),
    ):
        r = await env.client.post(path, headers=headers)
        assert r.status_code in (403, 404), (path, r.text)
        assert r.json()["error"]["message"]

    # The HCMC officer rotates its own province's site: the old code and session die.
    r = await env.client.post("/api/directory/sites/26734/rotate", headers=hcm)
    assert r.status_code == 200, r.text
    fresh = r.json()
    assert fresh["join_code"].startswith("26734:") and fresh["join_code"] != env.join_codes["26734"]
    assert fresh["join_link"].endswith("/join#" + fresh["join_code"])
    assert await site.wait_closed(timeout=2.0) >= 4000  # at once, not at the 5 s poll
    old = await env.client.post("/api/auth/site-login", json={"join_code": env.join_codes["26734"]})
    assert old.status_code == 401
    new = await env.client.post("/api/auth/site-login", json={"join_code": fresh["join_code"]})
    assert new.status_code == 200

    r = await env.client.post("/api/directory/sites/26734/revoke", headers=ops)
    assert r.status_code == 200 and r.json()["credential_version"] >= 2
    again = await env.client.post("/api/auth/site-login", json={"join_code": fresh["join_code"]})
    assert again.status_code == 401
    _, entries = await query_audit(env.runtime.db, AuditQuery())
    actions = [e.action for e in entries]
    assert actions.count("site.credential.rotate") == 1
    assert actions.count("site.credential.revoke") == 1
