"""The charts page's API: series tables (country, province, commune) and the top-N and
rising-fast lists by province and commune, for numbers and for a choice indicator.

Bad inputs tried: free text as the indicator, a choice without an option, an option
that does not exist, an option for a number, an unknown site, another province's
commune for an officer, an unknown level, n out of range, a range ending before it
starts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

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
]


@pytest.fixture
async def env(sqlite_url: str) -> AsyncIterator[ApiEnv]:
    staff = {**DEFAULT_STAFF, "hn": ("province_officer", "01")}
    async with api_env(sqlite_url, TREE, (), staff) as e:
        yield e


def _rows(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(zip(body["keys"], row, strict=True)) for row in body["rows"]]


async def _seed(env: ApiEnv) -> tuple[date, dict[str, str]]:
    """Two days of reports: new cases and zone levels per commune."""
    chair = await env.login("chair")
    schema = env.runtime.command.schemas.get("covid19")
    today = schema.period_of(datetime.fromtimestamp(env.runtime.clock(), UTC))
    yesterday = today - timedelta(days=1)
    data = {
        # code: (cases yesterday, zone yesterday, cases today, zone today)
        "26734": (10, "orange", 40, "red"),
        "26737": (5, "green", 6, "green"),
        "00004": (30, "red", 20, "red"),
        "00008": (None, None, 7, "yellow"),
    }
    for code, (c0, z0, c1, z1) in data.items():
        for day, cases, zone in ((yesterday, c0, z0), (today, c1, z1)):
            if cases is None:
                continue
            r = await env.client.post(
                "/api/command/reports",
                json={
                    "schema": "covid19",
                    "period": day.isoformat(),
                    "values": covid(new_cases=cases, zone_level=zone),
                    "site_code": code,
                },
                headers=chair,
            )
            assert r.status_code == 200, r.text
    return today, chair


async def test_series_tables_for_country_province_and_commune(env: ApiEnv) -> None:
    c = env.client
    today, chair = await _seed(env)
    y, d = (today - timedelta(days=1)).isoformat(), today.isoformat()
    base = f"/api/command/series-table?schema=covid19&indicator=new_cases&from={y}&to={d}"
    assert _rows((await c.get(base, headers=chair)).json()) == [
        {"period": y, "value": 45},
        {"period": d, "value": 73},
    ]
    r = await c.get("/api/command/series?schema=covid19&indicator=new_cases", headers=chair)
    hcm = next(p for p in r.json()["provinces"] if p["code"] == "79")["province_id"]
    rows = _rows((await c.get(base + f"&province_id={hcm}", headers=chair)).json())
    assert [x["value"] for x in rows] == [15, 46]
    rows = _rows((await c.get(base + "&site_code=00008", headers=chair)).json())
    assert [x["value"] for x in rows] == [None, 7]
    body = (
        await c.get(base.replace("new_cases", "zone_level") + "&site_code=26734", headers=chair)
    ).json()
    assert [x["value"] for x in _rows(body)] == ["orange", "red"]
    body = (await c.get(base.replace("new_cases", "zone_level"), headers=chair)).json()
    assert body["keys"] == ["period", "green", "yellow", "orange", "red"]
    assert body["rows"][1] == [d, 1, 1, 0, 2]
    # The officer: its own province as "the country", no other province's commune.
    hn = await env.login("hn")
    assert [x["value"] for x in _rows((await c.get(base, headers=hn)).json())] == [30, 27]
    r = await c.get(base + "&site_code=26734", headers=hn)
    assert r.status_code == 422 and r.json()["error"]["code"] == "no_site"  # as if unknown
    r = await c.get(base + "&format=csv", headers=chair)
    assert r.content.decode("utf-8-sig").splitlines() == ["period,value", f"{y},45", f"{d},73"]
    for bad, status in (
        (base.replace("new_cases", "notes"), 422),
        (base + "&site_code=nope", 422),
        (f"/api/command/series-table?schema=covid19&indicator=new_cases&from={d}&to={y}", 422),
    ):
        r = await c.get(bad, headers=chair)
        assert r.status_code == status, (bad, r.text)


async def test_top_and_rising_lists(env: ApiEnv) -> None:
    c = env.client
    today, chair = await _seed(env)
    base = f"/api/command/rankings?schema=covid19&indicator=new_cases&period={today}"
    top = _rows((await c.get(base + "&level=commune", headers=chair)).json())
    assert [(x["code"], x["value"]) for x in top] == [
        ("26734", 40),
        ("00004", 20),
        ("00008", 7),
        ("26737", 6),
    ]
    assert top[0]["province_name"] == "Thành phố Hồ Chí Minh"
    rise = _rows((await c.get(base + "&level=commune&order=rise", headers=chair)).json())
    # Ngọc Hà has no report yesterday (no rise to measure); Ba Đình fell.
    assert [(x["code"], x["change"], x["change_pct"]) for x in rise] == [
        ("26734", 30, 300.0),
        ("26737", 1, 20.0),
    ]
    prov = _rows((await c.get(base + "&level=province&n=1", headers=chair)).json())
    assert [(x["code"], x["value"], x["previous"]) for x in prov] == [("79", 46, 15)]
    # A choice: communes reporting the red zone; rising: those that turned red.
    red = base.replace("new_cases", "zone_level") + "&option=red"
    rows = _rows((await c.get(red + "&level=commune", headers=chair)).json())
    assert sorted(x["code"] for x in rows) == ["00004", "26734"]
    assert {x["value"] for x in rows} == {"red"}
    rows = _rows((await c.get(red + "&level=commune&order=rise", headers=chair)).json())
    assert [(x["code"], x["previous"]) for x in rows] == [("26734", "orange")]
    rows = _rows((await c.get(red + "&level=province", headers=chair)).json())
    assert [(x["code"], x["value"]) for x in rows] == [("01", 1), ("79", 1)]
    # The officer's lists hold its province only.
    hn = await env.login("hn")
    rows = _rows((await c.get(base + "&level=commune", headers=hn)).json())
    assert [x["code"] for x in rows] == ["00004", "00008"]
    rows = _rows((await c.get(base + "&level=province", headers=hn)).json())
    assert [x["code"] for x in rows] == ["01"]
    for bad in (
        base.replace("new_cases", "notes"),
        base.replace("new_cases", "zone_level"),
        base.replace("new_cases", "zone_level") + "&option=purple",
        base + "&option=red",
        base + "&level=district",
        base + "&n=0",
        base + "&period=someday",
    ):
        r = await c.get(bad, headers=chair)
        assert r.status_code == 422, (bad, r.text)


async def test_a_free_text_indicator_has_no_series_on_any_path(env: ApiEnv) -> None:
    """The series, the area table and a commune's table refuse free text alike (one
    check, `command.aggregation.series_indicator`), before reading anything."""
    c = env.client
    chair = await env.login("chair")
    q = "schema=covid19&indicator=notes"
    for path in (
        f"/api/command/series?{q}",
        f"/api/command/series-table?{q}",
        f"/api/command/series-table?{q}&site_code=26734",
        f"/api/command/series-table?{q}&province_id=1&format=csv",
    ):
        r = await c.get(path, headers=chair)
        assert r.status_code == 422, (path, r.text)
        error = r.json()["error"]
        assert (error["code"], error["message"]) == (
            "not_numeric",
            "indicator: 'notes' is free text and has no series",
        ), path
