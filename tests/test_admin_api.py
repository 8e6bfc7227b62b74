"""The administration page's API: staff accounts, site credentials with a printable sheet,
indicator schemas added from JSON (kept across a restart).

Bad inputs tried: a non-admin on every admin route, a short password, an unknown
role, an officer without a province, a national role with one, an unknown province,
a duplicate username, disabling or demoting the last admin, an unknown account, an
officer's sheet for another province, an unknown site, a schema that is not JSON,
one with six problems (each reported by field), one past 256 KB, a duplicate key.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from diemcau.api import create_app
from diemcau.config import Settings
from diemcau.directory.records import UnitRecord
from diemcau.wiring import build_runtime
from tests.api_support import PASSWORD, ApiEnv, api_env

TREE = [
    UnitRecord(code="VN", name="Việt Nam", level="country"),
    UnitRecord(code="79", name="Thành phố Hồ Chí Minh", level="province", parent_code="VN"),
    UnitRecord(code="26734", name="Phường Bến Nghé", level="commune", parent_code="79"),
    UnitRecord(code="01", name="Thành phố Hà Nội", level="province", parent_code="VN"),
    UnitRecord(code="00004", name="Phường Ba Đình", level="commune", parent_code="01"),
    UnitRecord(code="00008", name="Phường Ngọc Hà", level="commune", parent_code="01"),
]

STAFF = {
    "admin": ("admin", None),
    "chair": ("chair", None),
    "ops": ("operator", None),
    "hn": ("province_officer", "01"),
}

FLOOD = {
    "key": "flood",
    "label_vi": "Báo cáo lũ",
    "label_en": "Flood report",
    "period": "daily",
    "indicators": [
        {"key": "households", "type": "int", "required": True, "label_vi": "Số hộ ngập",
         "label_en": "Flooded households"},
        {"key": "level", "type": "choice", "label_vi": "Mức nước", "label_en": "Water level",
         "choices": [{"key": "low", "label_vi": "Thấp", "label_en": "Low", "color": "#2e9d4a"},
                     {"key": "high", "label_vi": "Cao", "label_en": "High", "color": "#d7191c"}]},
    ],
}  # fmt: skip


@pytest.fixture
async def env(sqlite_url: str) -> AsyncIterator[ApiEnv]:
    async with api_env(sqlite_url, TREE, ("00004", "26734"), STAFF) as e:
        yield e


def _rows(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(zip(body["keys"], row, strict=True)) for row in body["rows"]]


async def _login(c: httpx.AsyncClient, username: str, password: str = PASSWORD) -> httpx.Response:
    return await c.post("/api/auth/login", json={"username": username, "password": password})


async def test_staff_accounts(env: ApiEnv) -> None:
    c = env.client
    admin, chair = await env.login("admin"), await env.login("chair")
    for method, url in (
        ("GET", "/api/admin/staff"),
        ("POST", "/api/admin/staff"),
        ("PATCH", "/api/admin/staff/chair"),
        ("POST", "/api/admin/staff/chair/password"),
        ("POST", "/api/admin/schemas"),
    ):
        r = await c.request(method, url, headers=chair, json={})
        assert r.status_code == 403, (url, r.text)
    new = {
        "username": "lan",
        "password": "mat-khau-dai",
        "role": "province_officer",
        "province_code": "79",
    }
    r = await c.post(
        "/api/admin/staff", json={**new, "display_name": "Nguyễn Thị Lan"}, headers=admin
    )
    assert r.status_code == 201, r.text
    assert r.json()["province_code"] == "79"
    rows = _rows((await c.get("/api/admin/staff", headers=admin)).json())
    assert [x["username"] for x in rows] == ["admin", "chair", "hn", "lan", "ops"]
    for body, status in (
        ({**new, "username": "x1", "password": "short"}, 422),
        ({**new, "username": "x2", "role": "king"}, 422),
        ({**new, "username": "x3", "province_code": None}, 422),
        ({**new, "username": "x4", "role": "chair"}, 422),
        ({**new, "username": "x5", "province_code": "99"}, 404),
        (new, 409),
    ):
        r = await c.post("/api/admin/staff", json=body, headers=admin)
        assert r.status_code == status, (body, r.text)
    # Lan becomes an operator: her open session is refused at once; a new login works.
    lan = {"Authorization": "Bearer " + (await _login(c, "lan", "mat-khau-dai")).json()["token"]}
    assert (await c.get("/api/command/directive-table", headers=lan)).status_code == 200
    r = await c.patch(
        "/api/admin/staff/lan", json={"role": "operator", "province_code": ""}, headers=admin
    )
    assert r.status_code == 200 and r.json()["province_code"] is None
    assert (await c.get("/api/command/directive-table", headers=lan)).status_code == 401
    # Reset her password: the old one fails, the new one works; then disable her.
    r = await c.post(
        "/api/admin/staff/lan/password", json={"password": "moi-mat-khau-9"}, headers=admin
    )
    assert r.status_code == 200
    assert (await _login(c, "lan", "mat-khau-dai")).status_code == 401
    assert (await _login(c, "lan", "moi-mat-khau-9")).status_code == 200
    r = await c.post("/api/admin/staff/lan/password", json={"password": "short"}, headers=admin)
    assert r.status_code == 422
    r = await c.patch("/api/admin/staff/lan", json={"disabled": True}, headers=admin)
    assert r.status_code == 200 and r.json()["disabled"] is True
    assert (await _login(c, "lan", "moi-mat-khau-9")).status_code == 401
    # The last enabled admin cannot lock the country out.
    lockouts: list[dict[str, Any]] = [{"disabled": True}, {"role": "chair"}]
    for lockout in lockouts:
        r = await c.patch("/api/admin/staff/admin", json=lockout, headers=admin)
        assert r.status_code == 409 and r.json()["error"]["code"] == "last_admin", r.text
    for body, status in (
        ({"role": "province_officer"}, 422),
        ({"province_code": "01"}, 422),
        ({"nickname": "x"}, 422),
    ):
        r = await c.patch("/api/admin/staff/ops", json=body, headers=admin)
        assert r.status_code == status, (body, r.text)
    assert (await c.patch("/api/admin/staff/nobody", json={}, headers=admin)).status_code == 404
    r = await c.get("/api/admin/staff?format=csv", headers=admin)
    assert r.content.decode("utf-8-sig").splitlines()[0] == (
        "username,display_name,role,province_code,disabled,created_at"
    )


async def test_site_credentials_and_sheet(env: ApiEnv) -> None:
    c = env.client
    admin, hn, ops = await env.login("admin"), await env.login("hn"), await env.login("ops")
    rows = _rows((await c.get("/api/admin/sites", headers=admin)).json())
    state = {x["code"]: x["state"] for x in rows}
    assert state["00004"] == "active" and state["00008"] == "never"
    r = await c.get("/api/admin/sites?state=never&q=ngoc ha", headers=ops)
    assert [x["code"] for x in _rows(r.json())] == ["00008"]
    r = await c.get("/api/admin/sites", headers=hn)
    assert {x["code"] for x in _rows(r.json())} == {"01", "00004", "00008"}
    # A new credential with its sheet: the old join code is refused, the new one works.
    old = env.join_codes["00004"]
    r = await c.post("/api/admin/sites/00004/sheet", headers=hn)
    assert r.status_code == 200, r.text
    sheet = r.json()
    assert sheet["join_code"].startswith("00004:") and sheet["join_link"].endswith(
        sheet["join_code"]
    )
    assert (
        sheet["qr_svg"].startswith("<svg")
        and 'xmlns="http://www.w3.org/2000/svg"' in sheet["qr_svg"]
    )
    assert sheet["province_name"] == "Thành phố Hà Nội"
    assert (await c.post("/api/auth/site-login", json={"join_code": old})).status_code == 401
    r = await c.post("/api/auth/site-login", json={"join_code": sheet["join_code"]})
    assert r.status_code == 200
    # The audit log records it.
    items = (await c.get("/api/audit", headers=admin)).json()["items"]
    assert any(e["action"] == "site.credential.rotate" and e["target"] == "00004" for e in items)
    # Another province (answered like an unknown site: docs/security.md), an unknown
    # site, a chair: refused.
    assert (await c.post("/api/admin/sites/26734/sheet", headers=hn)).status_code == 404
    assert (await c.post("/api/admin/sites/99999/sheet", headers=admin)).status_code == 404
    assert (
        await c.post("/api/admin/sites/00004/sheet", headers=await env.login("chair"))
    ).status_code == 403
    r = await c.get("/api/admin/sites?state=lost", headers=admin)
    assert r.status_code == 422
    # Saved groups as a table, exported for any staff member (as /api/site-groups).
    r = await c.post(
        "/api/site-groups", json={"name": "=Vùng lũ", "invite": {"units": ["01"]}}, headers=ops
    )
    assert r.status_code == 201, r.text
    r = await c.get("/api/admin/site-groups?format=csv", headers=hn)
    lines = r.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "id,name,description,site_count,updated_at"
    assert ",'=Vùng lũ,,3," in lines[1]


async def test_schemas_added_from_json_are_checked_by_field_and_kept(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with api_env(sqlite_url, TREE, ("00004",), STAFF) as env:
        c = env.client
        admin = await env.login("admin")
        bad = {
            "key": "Flood!",
            "label_vi": "",
            "label_en": "Flood",
            "period": "monthly",
            "indicators": [{"key": "people", "type": "number"}],
        }
        r = await c.post("/api/admin/schemas", content=json.dumps(bad), headers=admin)
        assert r.status_code == 422
        err = r.json()["error"]
        fields = [d["field"] for d in err["details"]]
        assert fields[:3] == ["key", "label_vi", "period"]
        assert "indicators.0.type" in fields and "indicators.0.label_vi" in fields
        assert err["message"].startswith("key: ")
        for content, status in (
            (b"{not json", 422),
            (b"[1, 2]", 422),
            (b"{" + b" " * (300 * 1024) + b"}", 422),
            (json.dumps({**FLOOD, "key": "covid19"}).encode(), 409),
        ):
            r = await c.post("/api/admin/schemas", content=content, headers=admin)
            assert r.status_code == status, r.text
        r = await c.post("/api/admin/schemas", content=json.dumps(FLOOD), headers=admin)
        assert r.status_code == 201, r.text
        assert (
            await c.post("/api/admin/schemas", content=json.dumps(FLOOD), headers=admin)
        ).status_code == 409
        keys = [s["key"] for s in (await c.get("/api/command/schemas", headers=admin)).json()]
        assert keys == ["covid19", "disaster", "flood"]
        # Its indicators as a table, exported; an unknown schema is refused.
        r = await c.get("/api/admin/schemas/flood?format=csv", headers=await env.login("hn"))
        lines = r.content.decode("utf-8-sig").splitlines()
        assert lines[0].startswith("key,label_vi,label_en,type,required")
        assert lines[2].startswith("level,Mức nước,Water level,choice,0") and "high=Cao" in lines[2]
        assert (await c.get("/api/admin/schemas/nope", headers=admin)).status_code == 404
        ba_dinh = await env.site("00004")
        r = await c.post(
            "/api/command/reports",
            json={"schema": "flood", "values": {"households": 12, "level": "high"}},
            headers=ba_dinh,
        )
        assert r.status_code == 200, r.text
    # A restart (a new runtime on the same store) knows the schema and its reports.
    runtime = await build_runtime(Settings(database_url=sqlite_url, port=0))
    transport = httpx.ASGITransport(app=create_app(runtime), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        await runtime.start()
        try:
            admin = {"Authorization": "Bearer " + (await _login(c, "admin")).json()["token"]}
            keys = [s["key"] for s in (await c.get("/api/command/schemas", headers=admin)).json()]
            assert "flood" in keys
            r = await c.get("/api/command/completeness?schema=flood", headers=admin)
            assert r.json()["summary"]["filed"] == 1
        finally:
            await runtime.close()
