"""The alerts page's API: the alerts table with filters and scope, what triggered each,
acknowledgement with a note (the first one stands), exports.

Bad inputs tried: a note past 2,000 characters, an unknown field in the body, an
unknown state and severity, an officer acknowledging another province's alert, an
unknown alert id.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from diemcau.command.models import Alert
from diemcau.directory.records import UnitRecord
from tests.api_support import DEFAULT_STAFF, ApiEnv, api_env
from tests.test_command_support import covid

TREE = [
    UnitRecord(code="VN", name="Việt Nam", level="country"),
    UnitRecord(code="79", name="Thành phố Hồ Chí Minh", level="province", parent_code="VN"),
    UnitRecord(code="26734", name="Phường Bến Nghé", level="commune", parent_code="79"),
    UnitRecord(code="01", name="Thành phố Hà Nội", level="province", parent_code="VN"),
    UnitRecord(code="00004", name="Phường Ba Đình", level="commune", parent_code="01"),
]


@pytest.fixture
async def env(sqlite_url: str) -> AsyncIterator[ApiEnv]:
    staff = {**DEFAULT_STAFF, "hn": ("province_officer", "01")}
    async with api_env(sqlite_url, TREE, ("26734", "00004"), staff) as e:
        yield e


def _rows(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(zip(body["keys"], row, strict=True)) for row in body["rows"]]


async def test_alert_table_filters_scope_trigger_and_ack_with_note(env: ApiEnv) -> None:
    c = env.client
    chair, hn, hcm = await env.login("chair"), await env.login("hn"), await env.login("hcm")
    # Deaths above the threshold (5) in Ba Đình (Hà Nội) and Bến Nghé (HCMC).
    for code, deaths in (("00004", 7), ("26734", 9)):
        r = await c.post(
            "/api/command/reports",
            json={"schema": "covid19", "values": covid(deaths=deaths)},
            headers=await env.site(code),
        )
        assert r.status_code == 200, r.text
    body = (await c.get("/api/command/alert-table", headers=chair)).json()
    rows = _rows(body)
    assert sorted(x["site_code"] for x in rows) == ["00004", "26734"]
    ba_dinh = next(x for x in rows if x["site_code"] == "00004")
    assert (
        ba_dinh["kind"] == "indicator_threshold" and ba_dinh["province_name"] == "Thành phố Hà Nội"
    )
    assert "indicator=deaths" in ba_dinh["trigger"] and "value=7" in ba_dinh["trigger"]
    details = body["details"][str(ba_dinh["id"])]
    assert details["threshold"] == 5 and details["report_id"] > 0 and details["message_en"]
    # The officer sees its province's alert only, and cannot acknowledge the other one.
    hn_rows = _rows((await c.get("/api/command/alert-table", headers=hn)).json())
    assert [x["site_code"] for x in hn_rows] == ["00004"]
    other = next(x for x in rows if x["site_code"] == "26734")["id"]
    r = await c.post(f"/api/command/alerts/{other}/ack", json={"note": "x"}, headers=hn)
    assert r.status_code == 404
    # Acknowledge with a note; a second acknowledgement does not replace it.
    r = await c.post(
        f"/api/command/alerts/{ba_dinh['id']}/ack",
        json={"note": "Đã gọi xã, số liệu đúng"},
        headers=hn,
    )
    assert r.status_code == 200 and r.json()["acknowledge_note"] == "Đã gọi xã, số liệu đúng"
    r = await c.post(
        f"/api/command/alerts/{ba_dinh['id']}/ack", json={"note": "khác"}, headers=chair
    )
    assert (
        r.json()["acknowledged_by"] == "staff:hn"
        and r.json()["acknowledge_note"] == "Đã gọi xã, số liệu đúng"
    )
    # The dashboard's bodiless acknowledgement still works.
    r = await c.post(f"/api/command/alerts/{other}/ack", headers=hcm)
    assert r.status_code == 200 and r.json()["acknowledge_note"] is None
    # Filters: unacknowledged, severity, words, cleared.
    r = await c.get("/api/command/alert-table?unacknowledged=true", headers=chair)
    assert _rows(r.json()) == []
    r = await c.get("/api/command/alert-table?q=ba dinh", headers=chair)
    assert [x["site_code"] for x in _rows(r.json())] == ["00004"]
    r = await c.get("/api/command/alert-table?severity=info&severity=warning", headers=chair)
    assert _rows(r.json()) == []
    r = await c.get("/api/command/alert-table?severity=critical", headers=chair)
    assert len(_rows(r.json())) == 2
    # A corrected report clears the alert: it moves to the past alerts.
    r = await c.post(
        "/api/command/reports",
        json={"schema": "covid19", "values": covid(deaths=1)},
        headers=await env.site("00004"),
    )
    assert r.status_code == 200
    r = await c.get("/api/command/alert-table?state=cleared", headers=chair)
    cleared = _rows(r.json())
    assert [x["site_code"] for x in cleared] == ["00004"] and cleared[0]["cleared_at"]
    r = await c.get("/api/command/alert-table?state=all&format=csv", headers=chair)
    text = r.content.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("id,severity,kind,raised_at,message")
    assert "Đã gọi xã, số liệu đúng" in text and len(text.splitlines()) == 3
    # Bad inputs change nothing.
    async with env.runtime.db.session() as s:
        before = [(a.id, a.acknowledge_note) for a in (await s.scalars(select(Alert))).all()]
    cases: list[tuple[str, str, dict[str, Any], int]] = [
        ("POST", f"/api/command/alerts/{other}/ack", {"json": {"note": "x" * 2001}}, 422),
        ("POST", f"/api/command/alerts/{other}/ack", {"json": {"note": "x", "by": "me"}}, 422),
        ("POST", "/api/command/alerts/999999/ack", {"json": {"note": "x"}}, 404),
        ("GET", "/api/command/alert-table?state=old", {}, 422),
        ("GET", "/api/command/alert-table?severity=urgent", {}, 422),
    ]
    for method, url, kwargs, status in cases:
        r = await c.request(method, url, headers=chair, **kwargs)
        assert r.status_code == status, (url, r.text)
    async with env.runtime.db.session() as s:
        after = [(a.id, a.acknowledge_note) for a in (await s.scalars(select(Alert))).all()]
    assert after == before
