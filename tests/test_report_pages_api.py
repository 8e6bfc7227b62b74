"""The situation-reports page's API: completeness by province and by commune, the latest
report of a silent commune, the reporting rate over periods, a report's history table.

Bad inputs tried: an unknown schema, a period that is not a date, an unknown state,
an officer asking for another province, a site token on the staff tables, a report
id that does not exist, another site's report history.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from openpyxl import load_workbook

from diemcau.directory.records import UnitRecord
from tests.api_support import DEFAULT_STAFF, ApiEnv, api_env
from tests.test_command_support import covid

TREE = [
    UnitRecord(code="VN", name="Việt Nam", level="country"),
    UnitRecord(code="79", name="Thành phố Hồ Chí Minh", level="province", parent_code="VN"),
    UnitRecord(code="26734", name="Phường Bến Nghé", level="commune", parent_code="79"),
    UnitRecord(code="26737", name="Phường Bến Thành", level="commune", parent_code="79"),
    UnitRecord(code="01", name="Thành phố Hà Nội", level="province", parent_code="VN"),
    UnitRecord(code="00004", name="Phường Ba Đình", level="commune", parent_code="01"),
    UnitRecord(code="00008", name="Phường Ngọc Hà", level="commune", parent_code="01"),
    UnitRecord(code="00091", name="Phường Hoàn Kiếm", level="commune", parent_code="01"),
]


@pytest.fixture
async def env(sqlite_url: str) -> AsyncIterator[ApiEnv]:
    staff = {**DEFAULT_STAFF, "hn": ("province_officer", "01")}
    async with api_env(sqlite_url, TREE, ("26734", "00004", "00008"), staff) as e:
        yield e


def _today(env: ApiEnv) -> date:
    schema = env.runtime.command.schemas.get("covid19")
    return schema.period_of(datetime.fromtimestamp(env.runtime.clock(), UTC))  # type: ignore[no-any-return]


def _rows(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(zip(body["keys"], row, strict=True)) for row in body["rows"]]


async def test_completeness_by_province_and_commune_follows_filings(env: ApiEnv) -> None:
    c = env.client
    chair, hn, hcm = await env.login("chair"), await env.login("hn"), await env.login("hcm")
    today = _today(env)
    day = today.isoformat()
    # Ngọc Hà filed three days ago and has been silent since.
    old = (today - timedelta(days=3)).isoformat()
    r = await c.post(
        "/api/command/reports",
        json={"schema": "covid19", "period": old, "values": covid(), "site_code": "00008"},
        headers=chair,
    )
    assert r.status_code == 200, r.text
    silent_report = r.json()["id"]
    r = await c.get(f"/api/command/completeness?schema=covid19&period={day}", headers=chair)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["summary"]["expected"] == 5 and body["summary"]["missing"] == 5
    hn_row = next(x for x in _rows(body) if x["province_code"] == "01")
    assert (hn_row["expected"], hn_row["filed"], hn_row["missing"]) == (3, 0, 3)
    pid = hn_row["province_id"]
    sites = f"/api/command/completeness/sites?schema=covid19&period={day}&province_id={pid}"
    rows = _rows((await c.get(sites, headers=chair)).json())
    assert [x["site_code"] for x in rows] == ["00004", "00008", "00091"]
    ngoc_ha = next(x for x in rows if x["site_code"] == "00008")
    assert ngoc_ha["status"] == "missing" and ngoc_ha["report_period"] == old
    assert ngoc_ha["report_id"] == silent_report
    assert next(x for x in rows if x["site_code"] == "00091")["report_period"] is None
    # Ba Đình files: it leaves the missing list and counts as filed on time.
    ba_dinh = await env.site("00004")
    r = await c.post(
        "/api/command/reports",
        json={"schema": "covid19", "values": covid(deaths=1)},
        headers=ba_dinh,
    )
    assert r.status_code == 200, r.text
    report_id = r.json()["id"]
    rows = _rows((await c.get(sites, headers=chair)).json())
    assert [x["site_code"] for x in rows] == ["00008", "00091"]
    rows = _rows((await c.get(sites + "&state=filed", headers=chair)).json())
    assert [(x["site_code"], x["report_id"]) for x in rows] == [("00004", report_id)]
    body = (
        await c.get(f"/api/command/completeness?schema=covid19&period={day}", headers=hn)
    ).json()
    assert [(x["province_code"], x["filed"], x["missing"]) for x in _rows(body)] == [("01", 1, 2)]
    assert body["summary"]["rate"] == round(1 / 3, 4)
    # The rate over the last periods: three days ago 1 of 3, today 1 of 3 in Hà Nội.
    r = await c.get(f"/api/command/completeness/trend?schema=covid19&to={day}", headers=chair)
    trend = _rows(r.json())
    hn_trend = next(x for x in trend if x["province_code"] == "01")
    assert hn_trend[old] == round(1 / 3, 4) and hn_trend[day] == round(1 / 3, 4)
    assert len(r.json()["keys"]) == 3 + 7
    # Officers stay in their province; sites never read these tables.
    for url in (sites, f"/api/command/completeness?schema=covid19&period={day}"):
        r = await c.get(url, headers=hcm)
        if "province_id" in url:
            assert r.status_code == 403, r.text
        else:
            assert all(x["province_code"] == "79" for x in _rows(r.json()))
        r = await c.get(url, headers=ba_dinh)
        assert r.status_code == 403
    # Exports of the same rows.
    r = await c.get(sites + "&format=csv", headers=chair)
    lines = r.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("site_code,site_name,status") and len(lines) == 3
    r = await c.get(
        f"/api/command/completeness?schema=covid19&period={day}&format=xlsx", headers=chair
    )
    sheet = load_workbook(io.BytesIO(r.content)).active
    assert sheet is not None and sheet.max_row == 2 + 2
    # Bad inputs.
    for url in (
        "/api/command/completeness?schema=nope",
        "/api/command/completeness?schema=covid19&period=yesterday",
        sites + "&state=silent",
        "/api/command/completeness/trend?schema=covid19&from=2026-13-01",
    ):
        r = await c.get(url, headers=chair)
        assert r.status_code in (404, 422), (url, r.text)


async def test_revision_history_table(env: ApiEnv) -> None:
    c = env.client
    chair, hcm = await env.login("chair"), await env.login("hcm")
    ba_dinh, ben_nghe = await env.site("00004"), await env.site("26734")
    r = await c.post(
        "/api/command/reports",
        json={"schema": "covid19", "values": covid(deaths=1)},
        headers=ba_dinh,
    )
    rid = r.json()["id"]
    r = await c.patch(
        f"/api/command/reports/{rid}",
        json={"values": {"deaths": 2, "notes": "=SUM(A1)"}, "note": "đếm lại"},
        headers=chair,
    )
    assert r.status_code == 200, r.text
    r = await c.get(f"/api/command/reports/{rid}/revisions", headers=chair)
    body = r.json()
    rows = _rows(body)
    assert [x["revision"] for x in rows] == [1, 2]
    assert rows[0]["changes"] == "" and rows[1]["changes"] == "deaths: 1 → 2; notes: ∅ → =SUM(A1)"
    assert rows[1]["changed_by"] == "staff:chair" and rows[1]["note"] == "đếm lại"
    assert body["site"] == {"code": "00004", "name": "Phường Ba Đình"}
    # The site sees its own history; another site and another province do not.
    assert (
        await c.get(f"/api/command/reports/{rid}/revisions", headers=ba_dinh)
    ).status_code == 200
    assert (
        await c.get(f"/api/command/reports/{rid}/revisions", headers=ben_nghe)
    ).status_code == 403
    assert (await c.get(f"/api/command/reports/{rid}/revisions", headers=hcm)).status_code == 403
    assert (await c.get("/api/command/reports/99999/revisions", headers=chair)).status_code == 404
    r = await c.get(f"/api/command/reports/{rid}/revisions?format=csv", headers=chair)
    assert "'=SUM(A1)" not in r.text  # not at the start of a cell: left as is
    assert "deaths: 1 → 2; notes: ∅ → =SUM(A1)" in r.content.decode("utf-8-sig")
