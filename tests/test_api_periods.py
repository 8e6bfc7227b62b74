"""A date in the middle of a period names that period on every route that reads one.

A chair asking for "the week of <a Wednesday>" gets the week starting that Monday from
the report list, the aggregate, the series, the map, the filing status, both exports
and the chart and report pages alike: one window, the same rows everywhere.

Bad inputs tried: a date that is not a date in ``from``, ``to`` and ``period`` (the
error names the query parameter the caller typed), a range that ends a week before it
starts (refused), an unknown schema; none of them changes a report.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest

from diemcau.directory.records import UnitRecord
from tests.api_support import ApiEnv, api_env

TREE = [
    UnitRecord(code="VN", name="Việt Nam", level="country"),
    UnitRecord(code="79", name="Thành phố Hồ Chí Minh", level="province", parent_code="VN"),
    UnitRecord(code="26734", name="Phường Bến Nghé", level="commune", parent_code="79"),
    UnitRecord(code="26737", name="Phường Bến Thành", level="commune", parent_code="79"),
]

WEEKLY = "flood_week"
A = "/api/command"


@pytest.fixture
async def env(sqlite_url: str) -> AsyncIterator[ApiEnv]:
    async with api_env(sqlite_url, TREE, ()) as e:
        schemas = e.runtime.command.schemas
        schemas.add(schemas.get("disaster").model_copy(update={"key": WEEKLY, "period": "weekly"}))
        yield e


async def _file_this_week(env: ApiEnv, chair: dict[str, str]) -> date:
    """File one weekly report for Bến Nghé this week; returns the week's Monday."""
    monday = env.runtime.command.schemas.get(WEEKLY).period_of(
        datetime.fromtimestamp(env.runtime.clock(), UTC)
    )
    r = await env.client.post(
        f"{A}/reports",
        json={
            "schema": WEEKLY,
            "period": monday.isoformat(),
            "values": {"people_evacuated": 120, "houses_damaged": 4, "deaths": 0},
            "site_code": "26734",
        },
        headers=chair,
    )
    assert r.status_code == 200, r.text
    assert r.json()["period"] == monday.isoformat()
    return monday


async def test_mid_week_date_names_the_same_week_on_every_route(env: ApiEnv) -> None:
    c = env.client
    chair = await env.login("chair")
    monday = await _file_this_week(env, chair)
    week = monday.isoformat()
    mid = (monday + timedelta(days=2)).isoformat()  # the Wednesday of that week
    q = f"schema={WEEKLY}&from={mid}&to={mid}"

    listed = await c.get(f"{A}/reports?{q}", headers=chair)
    assert listed.status_code == 200, listed.text
    assert [(r["period"], r["values"]["people_evacuated"]) for r in listed.json()] == [(week, 120)]

    agg = (await c.get(f"{A}/aggregate?{q}", headers=chair)).json()
    assert agg["periods"] == [week]
    assert agg["national"][0]["filed"] == 1
    series = (await c.get(f"{A}/series?{q}&indicator=people_evacuated", headers=chair)).json()
    assert series["periods"] == [week] and series["national"] == [120]
    table = await c.get(f"{A}/series-table?{q}&indicator=people_evacuated", headers=chair)
    assert table.status_code == 200, table.text
    assert [row[0] for row in table.json()["rows"]] == [week]

    raw = await c.get(f"{A}/export?{q}&what=reports&format=csv", headers=chair)
    assert raw.status_code == 200, raw.text
    assert f"{WEEKLY}-reports-{week}-{week}.csv" in raw.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(raw.content.decode("utf-8-sig"))))
    assert [(r["period"], r["site_code"]) for r in rows] == [(week, "26734")]
    totals = await c.get(f"{A}/export?{q}&what=aggregate&format=csv", headers=chair)
    assert f"{WEEKLY}-aggregate-{week}-{week}.csv" in totals.headers["content-disposition"]
    national = [
        r
        for r in csv.DictReader(io.StringIO(totals.content.decode("utf-8-sig")))
        if r["level"] == "national"
    ]
    assert [(r["period"], r["reports"]) for r in national] == [(week, "1")]

    one = f"schema={WEEKLY}&period={mid}"
    mapped = (await c.get(f"{A}/map?{one}&indicator=people_evacuated", headers=chair)).json()
    assert mapped["period"] == week and [s["code"] for s in mapped["sites"]] == ["26734"]
    status = (await c.get(f"{A}/status?{one}", headers=chair)).json()
    assert status["period"] == week and status["filed"] == 1
    complete = (await c.get(f"{A}/completeness?{one}", headers=chair)).json()
    assert complete["summary"]["filed"] == 1


async def test_a_range_within_one_week_is_that_week_on_both_paths(env: ApiEnv) -> None:
    """Thursday..Tuesday of the same week: one week for the command routes and the
    chart page alike (the command routes used to refuse it as reversed)."""
    c = env.client
    chair = await env.login("chair")
    monday = await _file_this_week(env, chair)
    thu, tue = monday + timedelta(days=3), monday + timedelta(days=1)
    q = f"schema={WEEKLY}&indicator=people_evacuated&from={thu}&to={tue}"
    series = await c.get(f"{A}/series?{q}", headers=chair)
    table = await c.get(f"{A}/series-table?{q}", headers=chair)
    assert series.status_code == table.status_code == 200, (series.text, table.text)
    assert series.json()["periods"] == [row[0] for row in table.json()["rows"]]
    assert series.json()["periods"] == [monday.isoformat()]


@pytest.mark.parametrize(
    ("path", "query", "field"),
    [
        ("aggregate", "from=2026-13-01", "from"),
        ("aggregate", "to=yesterday", "to"),
        ("series", "indicator=people_evacuated&from=18/11/2026", "from"),
        ("export", "to=2026-11-31", "to"),
        ("reports", "from=2026-02-30", "from"),
        ("map", "indicator=people_evacuated&period=tuesday", "period"),
        ("status", "period=2026-1-5x", "period"),
        ("series-table", "indicator=people_evacuated&from=not-a-day", "from"),
        ("completeness/trend", "to=2026/11/18", "to"),
    ],
)
async def test_a_bad_date_names_the_parameter_typed(
    env: ApiEnv, path: str, query: str, field: str
) -> None:
    c = env.client
    chair = await env.login("chair")
    monday = await _file_this_week(env, chair)
    r = await c.get(f"{A}/{path}?schema={WEEKLY}&{query}", headers=chair)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "bad_period"
    assert error["message"] == f"{field}: must be a date YYYY-MM-DD"
    listed = (await c.get(f"{A}/reports?schema={WEEKLY}", headers=chair)).json()
    assert [(x["period"], x["revision"]) for x in listed] == [(monday.isoformat(), 1)]


async def test_a_range_ending_a_week_before_it_starts_is_refused(env: ApiEnv) -> None:
    c = env.client
    chair = await env.login("chair")
    monday = await _file_this_week(env, chair)
    q = f"schema={WEEKLY}&from={monday}&to={monday - timedelta(days=7)}"
    for path in ("aggregate", "export", "series-table?indicator=people_evacuated"):
        r = await c.get(f"{A}/{path}{'&' if '?' in path else '?'}{q}", headers=chair)
        assert r.status_code == 422, (path, r.text)
        assert r.json()["error"]["code"] == "bad_range", path
    r = await c.get(f"{A}/aggregate?schema=no_such_schema&from={monday}", headers=chair)
    assert r.status_code == 404 and r.json()["error"]["code"] == "no_schema", r.text
