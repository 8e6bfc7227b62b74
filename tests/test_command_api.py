"""Command-center HTTP API: role checks end to end, reports, aggregates, exports, directives."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

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
]


Env = ApiEnv


@pytest.fixture
async def env(sqlite_url: str) -> AsyncIterator[Env]:
    async with api_env(
        sqlite_url,
        TREE,
        ("26734", "26737", "00004"),
        {**DEFAULT_STAFF, "hn": ("province_officer", "01")},
    ) as e:
        yield e


def _today(env: Env) -> str:
    schema = env.runtime.command.schemas.get("covid19")
    return str(schema.period_of(datetime.fromtimestamp(env.runtime.clock(), UTC)))


async def test_reports_through_the_api(env: Env) -> None:
    c = env.client
    day = _today(env)
    ben_nghe, ba_dinh = await env.site("26734"), await env.site("00004")
    r = await c.get("/openapi.json")
    paths = r.json()["paths"]
    for path in (
        "/api/command/reports",
        "/api/command/aggregate",
        "/api/command/directives",
        "/api/command/alerts/{alert_id}/ack",
        "/api/command/reports/import",
    ):
        assert path in paths
    r = await c.get("/api/command/schemas")
    assert r.status_code == 401  # no token, no schemas
    r = await c.get("/api/command/schemas", headers=ben_nghe)
    assert [s["key"] for s in r.json()] == ["covid19", "disaster"]
    # A bad value is refused with the field named and nothing stored.
    r = await c.post(
        "/api/command/reports",
        headers=ben_nghe,
        json={"schema": "covid19", "period": day, "values": covid(deaths=-1)},
    )
    assert r.status_code == 422 and r.json()["error"]["message"] == "deaths: must be ≥ 0"
    r = await c.post(
        "/api/command/reports",
        headers=ben_nghe,
        json={"schema": "covid19", "period": day, "values": covid(new_cases=4)},
    )
    assert r.status_code == 200, r.text
    report = r.json()
    # Another site can neither read nor correct it, nor list it.
    r = await c.get(f"/api/command/reports/{report['id']}", headers=ba_dinh)
    assert r.status_code == 403
    r = await c.patch(
        f"/api/command/reports/{report['id']}", headers=ba_dinh, json={"values": {"deaths": 1}}
    )
    assert r.status_code == 403
    r = await c.get("/api/command/reports", params={"schema": "covid19"}, headers=ba_dinh)
    assert r.json() == []
    # A site cannot name another site to file for it.
    r = await c.post(
        "/api/command/reports",
        headers=ba_dinh,
        json={"schema": "covid19", "values": covid(), "site_code": "26734"},
    )
    # Out of its reach: the same answer as a code that does not exist (issue 12).
    assert r.status_code == 422 and r.json()["error"]["code"] == "no_site", r.text
    # The Hanoi officer cannot see HCM's report; the HCM officer corrects it.
    r = await c.get(f"/api/command/reports/{report['id']}", headers=await env.login("hn"))
    assert r.status_code == 403
    hcm = await env.login("hcm")
    r = await c.patch(
        f"/api/command/reports/{report['id']}",
        headers=hcm,
        json={"values": {"new_cases": 6}, "note": "số liệu CDC"},
    )
    assert r.status_code == 200 and r.json()["revision"] == 2
    r = await c.get(f"/api/command/reports/{report['id']}/history", headers=ben_nghe)
    assert [h["changes"] for h in r.json()] == [{}, {"new_cases": [4, 6]}]
    assert r.json()[1]["changed_by"] == "staff:hcm"
    # CSV import by the officer: errors by line, then success.
    bad = (
        "site_code,new_cases,under_treatment,deaths,zone_level\n26737,1,2,0,pink\n00004,1,1,0,red\n"
    )
    r = await c.post(
        "/api/command/reports/import",
        params={"schema": "covid19", "period": day},
        content=bad.encode(),
        headers={**hcm, "Content-Type": "text/csv"},
    )
    assert r.status_code == 422
    msg = r.json()["error"]["message"]
    assert "line 2: zone_level: must be one of" in msg
    # A Hà Nội code from the HCMC officer: named like a code that does not exist.
    assert "line 3: site_code: no site '00004' in your province" in msg
    good = "site_code,new_cases,under_treatment,deaths,zone_level\n26737,1,2,0,red\n"
    r = await c.post(
        "/api/command/reports/import",
        params={"schema": "covid19", "period": day},
        content=good.encode(),
        headers={**hcm, "Content-Type": "text/csv"},
    )
    assert r.json() == {"created": 1, "corrected": 0, "unchanged": 0}
    # Sites may not read staff views.
    r = await c.get("/api/command/status", params={"schema": "covid19"}, headers=ben_nghe)
    assert r.status_code == 403
    chair = await env.login("chair")
    r = await c.get(
        "/api/command/status", params={"schema": "covid19", "period": day}, headers=chair
    )
    status = r.json()
    assert (status["expected"], status["filed"], status["missing"]) == (3, 2, 1)
    assert [m["code"] for m in status["missing_sites"]] == ["00004"]
    # Aggregates, series, map, exports.
    r = await c.get(
        "/api/command/aggregate",
        params={"schema": "covid19", "from": day, "to": day},
        headers=chair,
    )
    national = r.json()["national"][0]
    assert national["values"]["new_cases"]["value"] == 7 and national["filed"] == 2
    assert national["values"]["zone_level"]["counts"]["red"] == 1
    r = await c.get(
        "/api/command/series",
        params={"schema": "covid19", "indicator": "new_cases", "from": day, "to": day},
        headers=hcm,
    )
    assert r.json()["national"] == [7] and [p["code"] for p in r.json()["provinces"]] == ["79"]
    r = await c.get(
        "/api/command/map",
        params={"schema": "covid19", "indicator": "zone_level", "period": day},
        headers=chair,
    )
    assert {s["code"]: s["color"] for s in r.json()["sites"]}["26737"] == "#d7191c"
    r = await c.get(
        "/api/command/export",
        params={"schema": "covid19", "from": day, "to": day, "format": "csv"},
        headers=chair,
    )
    assert r.headers["content-type"].startswith("text/csv")
    assert r.content.decode("utf-8-sig").splitlines()[1].startswith(f"{day},national")
    r = await c.get(
        "/api/command/export",
        params={"schema": "covid19", "from": day, "to": day, "what": "reports", "format": "xlsx"},
        headers=hcm,
    )
    ws = load_workbook(io.BytesIO(r.content)).active
    assert ws is not None
    rows = list(ws.iter_rows(values_only=True))
    assert rows[1][1] == "site_code" and sorted(row[1] for row in rows[2:]) == ["26734", "26737"]


async def test_directives_and_alerts_through_the_api(env: Env) -> None:
    c = env.client
    chair, ops = await env.login("chair"), await env.login("ops")
    ben_nghe = await env.site("26734")
    deadline = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    body = {
        "title": "Sơ tán dân vùng trũng",
        "body": "Hoàn thành trước 18 giờ.",
        "priority": "urgent",
        "deadline": deadline,
        "target": {"provinces": ["79"], "kinds": ["commune"]},
    }
    r = await c.post("/api/command/directives", json=body, headers=ben_nghe)
    assert r.status_code == 403  # sites never issue directives
    r = await c.post("/api/command/directives", json=body, headers=ops)
    assert r.status_code == 403  # nor operators
    r = await c.post("/api/command/directives", json={**body, "priority": "asap"}, headers=chair)
    assert r.status_code == 422
    r = await c.post("/api/command/directives", json=body, headers=chair)
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["recipients"] == 2
    r = await c.get("/api/command/inbox", headers=ben_nghe)
    assert [x["id"] for x in r.json()] == [d["id"]]
    r = await c.post(f"/api/command/directives/{d['id']}/ack", headers=ben_nghe)
    assert r.status_code == 200 and r.json()["acknowledged_at"]
    r = await c.post(f"/api/command/directives/{d['id']}/ack", headers=await env.site("00004"))
    assert r.status_code == 404  # not sent to Hanoi
    r = await c.post(
        f"/api/command/directives/{d['id']}/complete", json={"note": "Đã sơ tán"}, headers=ben_nghe
    )
    assert r.json()["completion_note"] == "Đã sơ tán"
    r = await c.get(f"/api/command/directives/{d['id']}", headers=chair)
    detail = r.json()
    assert (detail["acknowledged"], detail["completed"]) == (1, 1)
    assert (
        detail["provinces"][0]["code"] == "79" and detail["provinces"][0]["completion_rate"] == 0.5
    )
    r = await c.post(f"/api/command/directives/{d['id']}/remind", json={}, headers=chair)
    assert r.json() == {"reminded": 1}
    r = await c.get(
        f"/api/command/directives/{d['id']}/recipients",
        params={"state": "incomplete"},
        headers=chair,
    )
    assert [x["code"] for x in r.json()] == ["26737"]
    r = await c.post(f"/api/command/directives/{d['id']}/escalate", json={}, headers=chair)
    assert len(r.json()["escalated"]) == 1
    hcm, hn = await env.login("hcm"), await env.login("hn")
    r = await c.get("/api/command/alerts", headers=hcm)
    [alert] = [a for a in r.json() if a["kind"] == "directive_escalated"]
    r = await c.get("/api/command/alerts", headers=hn)
    assert all(a["kind"] != "directive_escalated" for a in r.json())
    r = await c.post(f"/api/command/alerts/{alert['id']}/ack", headers=hn)
    assert r.status_code == 404  # another province's alert
    r = await c.post(f"/api/command/alerts/{alert['id']}/ack", headers=hcm)
    assert r.json()["acknowledged_by"] == "staff:hcm" and r.json()["acknowledged_at"]
    r = await c.get("/api/command/directives", headers=hn)
    assert r.json() == []
