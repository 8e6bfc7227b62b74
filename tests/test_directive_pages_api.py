"""The directives page's API: attachments, the audience preview, issuing with saved groups,
the tracking tables and their exports, each with the bad inputs tried.

Bad inputs tried: a file with a refused extension, an executable renamed ``.pdf``,
an empty file, one past 10 MB (refused after reading little more than the limit),
a name with a control character, a forged or altered file link, an officer
attaching another province's file, a target naming nothing, an unknown group, a
group with no site in the officer's province, an unknown site code, an officer
aiming at the country, a ``since`` without a time zone, an unknown status.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from diemcau.command.models import Directive, StoredFile
from diemcau.directory.records import UnitRecord
from tests.api_support import DEFAULT_STAFF, ApiEnv, api_env

TREE = [
    UnitRecord(code="VN", name="Việt Nam", level="country"),
    UnitRecord(code="79", name="Thành phố Hồ Chí Minh", level="province", parent_code="VN"),
    UnitRecord(code="26734", name="Phường Bến Nghé", level="commune", parent_code="79"),
    UnitRecord(code="26737", name="Phường Bến Thành", level="commune", parent_code="79"),
    UnitRecord(code="01", name="Thành phố Hà Nội", level="province", parent_code="VN"),
    UnitRecord(code="00004", name="=Phường Ba Đình", level="commune", parent_code="01"),
    UnitRecord(code="00008", name="Phường Ngọc Hà", level="commune", parent_code="01"),
]

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
async def env(sqlite_url: str) -> AsyncIterator[ApiEnv]:
    staff = {**DEFAULT_STAFF, "hn": ("province_officer", "01"), "admin": ("admin", None)}
    async with api_env(sqlite_url, TREE, ("26734", "00004"), staff) as e:
        yield e


async def _count(env: ApiEnv, model: type) -> int:
    async with env.runtime.db.session() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def test_attachments_are_checked_kept_and_served_at_signed_links(env: ApiEnv) -> None:
    c = env.client
    chair, ops, hn = await env.login("chair"), await env.login("ops"), await env.login("hn")
    r = await c.post("/api/command/files?name=Công văn 12.pdf", content=PDF, headers=chair)
    assert r.status_code == 200, r.text
    f = r.json()
    assert f["name"] == "Công văn 12.pdf" and f["mime"] == "application/pdf"
    assert f["size"] == len(PDF) and len(f["sha256"]) == 64
    # Anyone holding the link opens it (a commune's inbox), without a login.
    r = await c.get(f["url"])
    assert r.status_code == 200 and r.content == PDF
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "filename*=UTF-8''C%C3%B4ng%20v%C4%83n%2012.pdf" in r.headers["content-disposition"]
    # A forged or altered link is a missing file.
    for bad in (f"/api/command/files/{f['id']}", f"/api/command/files/{f['id']}?sig=" + "0" * 32):
        r = await c.get(bad)
        assert r.status_code == 404 and r.json()["error"]["code"] == "no_file"
    before = await _count(env, StoredFile)
    refused = [
        ("run.exe", b"MZ\x90\x00", "bad_type"),
        ("letter.pdf", b"MZ\x90\x00 not a pdf", "bad_content"),
        ("notes.txt", b"\xff\xfe\x00bad", "bad_content"),
        ("empty.pdf", b"", "empty"),
        ("bad\x07name.pdf", PDF, "bad_name"),
        ("noextension", PDF, "bad_type"),
    ]
    for name, content, code in refused:
        r = await c.post(
            "/api/command/files", params={"name": name}, content=content, headers=chair
        )
        assert r.status_code == 422 and r.json()["error"]["code"] == code, (name, r.text)
    # Past 10 MB: refused, reading little more than the limit.
    sent = 0

    async def big() -> AsyncIterator[bytes]:
        nonlocal sent
        yield PDF
        for _ in range(400):
            sent += 64 * 1024
            yield b"\0" * (64 * 1024)

    r = await c.post("/api/command/files?name=big.pdf", content=big(), headers=chair)
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
    assert sent < 12 * 1024 * 1024
    # An operator does not issue directives, so does not attach files either.
    r = await c.post("/api/command/files?name=a.pdf", content=PDF, headers=ops)
    assert r.status_code == 403
    assert await _count(env, StoredFile) == before
    # An officer may not attach a file uploaded in another province.
    r = await c.post("/api/command/files?name=hcm.pdf", content=PDF, headers=await env.login("hcm"))
    hcm_file = r.json()
    body: dict[str, Any] = {
        "directive": {
            "title": "t",
            "body": "b",
            "target": {"provinces": ["01"]},
            "attachments": [{"name": "x.pdf", "url": hcm_file["url"]}],
        }
    }
    r = await c.post("/api/command/directives/compose", json=body, headers=hn)
    assert r.status_code == 403 and r.json()["error"]["code"] == "other_province"
    body["directive"]["attachments"] = [{"name": "x.pdf", "url": f["url"] + "0"}]
    r = await c.post("/api/command/directives/compose", json=body, headers=hn)
    assert r.status_code == 422 and r.json()["error"]["code"] == "no_file"
    assert await _count(env, Directive) == 0


async def test_preview_counts_by_province_and_compose_expands_groups(env: ApiEnv) -> None:
    c = env.client
    chair, hn, ops = await env.login("chair"), await env.login("hn"), await env.login("ops")
    r = await c.post(
        "/api/command/directives/preview",
        json={"target": {"country": True, "kinds": ["commune"]}},
        headers=chair,
    )
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["total"] == 4
    assert [(x["code"], x["sites"]) for x in p["provinces"]] == [("01", 2), ("79", 2)]
    # A saved group spanning both provinces: the officer keeps its own members only.
    r = await c.post(
        "/api/site-groups",
        json={"name": "Vùng lũ", "invite": {"sites": ["26734", "00008"]}},
        headers=ops,
    )
    assert r.status_code == 201, r.text
    gid = r.json()["id"]
    r = await c.post("/api/command/directives/preview", json={"groups": [gid]}, headers=chair)
    assert r.json()["total"] == 2
    r = await c.post("/api/command/directives/preview", json={"groups": [gid]}, headers=hn)
    assert r.json()["total"] == 1 and r.json()["sample"][0]["code"] == "00008"
    # Bad targets: nothing named, unknown group, a group with nothing in scope,
    # an unknown site, an officer aiming at the country.
    only_hcm = (
        await c.post(
            "/api/site-groups", json={"name": "HCM", "invite": {"units": ["79"]}}, headers=ops
        )
    ).json()["id"]
    cases: list[tuple[dict[str, str], dict[str, Any], int, str | None]] = [
        (chair, {}, 422, "no_target"),
        (chair, {"groups": [9999]}, 404, None),
        (hn, {"groups": [only_hcm]}, 422, "empty_group"),
        (chair, {"target": {"sites": ["99999"]}}, 422, "no_site"),
        (hn, {"target": {"country": True}}, 403, "other_province"),
        (chair, {"target": {"bogus": 1}}, 422, "invalid"),
    ]
    for who, case, status, code in cases:
        r = await c.post("/api/command/directives/preview", json=case, headers=who)
        assert r.status_code == status, (case, r.text)
        if code:
            assert r.json()["error"]["code"] == code, r.text
    # Compose with the group and a province: the union, issued once.
    body: dict[str, Any] = {
        "directive": {
            "title": "Sơ tán dân",
            "body": "Khẩn trương sơ tán",
            "priority": "urgent",
            "target": {"provinces": ["01"], "kinds": ["commune"]},
            "client_id": "web-test-000001",
        },
        "groups": [gid],
    }
    r = await c.post("/api/command/directives/compose", json=body, headers=chair)
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["recipients"] == 3 and d["target"]["sites"] == ["00008", "26734"]
    # A retry with the same client id is the same directive.
    r = await c.post("/api/command/directives/compose", json=body, headers=chair)
    assert r.json()["id"] == d["id"] and await _count(env, Directive) == 1
    # The officer's own directive to its communes.
    body = {"directive": {"title": "Tỉnh chỉ đạo", "body": "x", "target": {"provinces": ["01"]}}}
    r = await c.post("/api/command/directives/compose", json=body, headers=hn)
    assert r.status_code == 200 and r.json()["issuer_province_id"] is not None


async def test_tracking_tables_filter_scope_and_export(env: ApiEnv) -> None:
    c = env.client
    chair, hn, hcm = await env.login("chair"), await env.login("hn"), await env.login("hcm")
    ids = []
    for title, prio in (("Phòng chống dịch", "urgent"), ("Báo cáo tuần", "normal")):
        r = await c.post(
            "/api/command/directives",
            json={"title": title, "body": "x", "priority": prio, "target": {"country": True}},
            headers=chair,
        )
        ids.append(r.json()["id"])
    hn_only = (
        await c.post(
            "/api/command/directives",
            json={"title": "Riêng Hà Nội", "body": "x", "target": {"provinces": ["01"]}},
            headers=hn,
        )
    ).json()["id"]
    ba_dinh = await env.site("00004")
    r = await c.post(
        f"/api/command/directives/{ids[0]}/complete", json={"note": "xong"}, headers=ba_dinh
    )
    assert r.status_code == 200
    r = await c.get("/api/command/directive-table?priority=urgent", headers=chair)
    t = r.json()
    rows = [dict(zip(t["keys"], row, strict=True)) for row in t["rows"]]
    assert [x["title"] for x in rows] == ["Phòng chống dịch"]
    assert rows[0]["completed"] == 1 and rows[0]["status"] == "open"
    r = await c.get("/api/command/directive-table?q=phong chong", headers=chair)
    assert len(r.json()["rows"]) == 1  # words without diacritics
    r = await c.get("/api/command/directive-table?mine=true", headers=hn)
    assert [row[0] for row in r.json()["rows"]] == [hn_only]
    # The HCMC officer never sees the Hà Nội directive.
    r = await c.get("/api/command/directive-table", headers=hcm)
    assert hn_only not in [row[0] for row in r.json()["rows"]] and len(r.json()["rows"]) == 2
    for url in (
        f"/api/command/directives/{hn_only}/provinces",
        f"/api/command/directives/{hn_only}/sites",
    ):
        r = await c.get(url, headers=hcm)
        assert r.status_code == 404, r.text
    # Per province: delivered counted (no hub in this test server: 0), completed 1 in Hà Nội.
    r = await c.get(f"/api/command/directives/{ids[0]}/provinces", headers=chair)
    t = r.json()
    rows = [dict(zip(t["keys"], row, strict=True)) for row in t["rows"]]
    assert [(x["province_code"], x["recipients"], x["completed"]) for x in rows] == [
        ("01", 3, 1),
        ("79", 3, 0),
    ]
    r = await c.get(f"/api/command/directives/{ids[0]}/provinces", headers=hn)
    assert [row[1] for row in r.json()["rows"]] == ["01"]
    # Drill-down to the communes of Hà Nội, then the ones that have not completed.
    pid = rows[0]["province_id"]
    r = await c.get(f"/api/command/directives/{ids[0]}/sites?province_id={pid}", headers=chair)
    t = r.json()
    assert [row[0] for row in t["rows"]] == ["00004", "00008", "01"]
    r = await c.get(
        f"/api/command/directives/{ids[0]}/sites?province_id={pid}&state=incomplete", headers=chair
    )
    assert [row[0] for row in r.json()["rows"]] == ["00008", "01"]
    r = await c.get(f"/api/command/directives/{ids[0]}/sites?province_id={pid}", headers=hcm)
    assert r.status_code == 403
    # Exports: CSV with a BOM and the formula-looking site name neutralised; XLSX.
    r = await c.get(
        f"/api/command/directives/{ids[0]}/sites?province_id={pid}&format=csv", headers=chair
    )
    assert r.status_code == 200 and r.content.startswith("\ufeff".encode())
    text = r.content.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("site_code,site_name")
    assert "'=Phường Ba Đình" in text and "xong" in text
    r = await c.get("/api/command/directive-table?format=xlsx", headers=chair)
    assert r.status_code == 200
    sheet = load_workbook(io.BytesIO(r.content)).active
    assert sheet is not None
    assert [c.value for c in sheet[2]][:3] == ["id", "issued_at", "title"]
    assert sheet.max_row == 2 + 3
    for bad in ("since=2026-01-01T00:00:00", "status=late", "format=pdf", "limit=0"):
        r = await c.get(f"/api/command/directive-table?{bad}", headers=chair)
        assert r.status_code == 422, (bad, r.text)
