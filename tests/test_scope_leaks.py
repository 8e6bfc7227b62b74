"""Scope leaks (issue 12, item 4): national alerts, saved groups, delegates, site codes.

Bad inputs tried, by name: the Hồ Chí Minh City officer acknowledging a national
media-node alert and a national directive alert; a chair editing and deleting the
operator's saved group; the operator (its creator) editing the group while the
chair's scheduled meeting invites it; a delegate naming more delegates; and, for
every route that takes a site code or id, the officer (and a site) asking for a site
of Hà Nội ("exists elsewhere") and for a code that exists nowhere: the two answers
must be the same, so they tell nothing about which sites exist.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from diemcau.store.models import StaffUser
from tests.api_world import World, build_world, ok

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
async def world(sqlite_url: str) -> AsyncIterator[World]:
    async with build_world(sqlite_url) as w:
        yield w


async def test_an_officer_does_not_acknowledge_national_alerts(world: World) -> None:
    c, tokens = world.client, world.tokens
    alerts = world.runtime.command.alerts
    national = await alerts.raise_alert(
        "media_node_degraded",
        "relay-2",
        message_vi="Máy chủ relay-2 không trả lời",
        message_en="relay-2 does not answer",
        severity="critical",
    )
    hcm_province = (await world.runtime.sites.find("26734")).province_id  # type: ignore[union-attr]
    own = await alerts.raise_alert(
        "report_overdue",
        "covid19:x:province:79",
        message_vi="Chưa báo cáo",
        message_en="Not reported",
        province_id=hcm_province,
    )
    for who in ("hcm", "hn"):
        r = await c.post(f"/api/command/alerts/{national.id}/ack", headers=tokens[who])
        assert r.status_code == 403 and r.json()["error"]["code"] == "national_alert", r.text
    assert (await alerts.get(_system(), national.id)).acknowledged_at is None  # unchanged
    # Its own province's alert it does acknowledge; the national one, national staff.
    r = await c.post(f"/api/command/alerts/{own.id}/ack", json={"note": "đã xử lý"},
                     headers=tokens["hcm"])  # fmt: skip
    assert r.status_code == 200 and r.json()["acknowledged_by"] == "staff:hcm"
    r = await c.post(f"/api/command/alerts/{national.id}/ack", headers=tokens["ops"])
    assert r.status_code == 200 and r.json()["acknowledged_by"] == "staff:ops"


def _system() -> Any:
    from diemcau.actors import Actor

    return Actor.system()


async def test_saved_groups_belong_to_their_creator_and_protect_scheduled_meetings(
    world: World,
) -> None:
    c, tokens, gid = world.client, world.tokens, world.ids["group_id"]  # made by "ops"
    for method, body in (("PATCH", {"name": "đổi"}), ("DELETE", None)):
        r = await c.request(method, f"/api/site-groups/{gid}", json=body, headers=tokens["chair"])
        assert r.status_code == 403 and r.json()["error"]["code"] == "not_owner", r.text
    r = await c.patch(f"/api/site-groups/{gid}", json={"name": "g-ops"}, headers=tokens["ops"])
    assert r.status_code == 200, r.text
    # The chair schedules a meeting inviting the group: its invitations are now the chair's.
    mid = ok(
        await c.post(
            "/api/meetings",
            json={"title": "Họp theo nhóm", "invite": {"groups": [gid]}},
            headers=tokens["chair"],
        )
    )["id"]
    changes: tuple[tuple[str, dict[str, Any] | None], ...] = (
        ("PATCH", {"invite": {"everyone": True}}),
        ("DELETE", None),
    )
    for method, change in changes:
        r = await c.request(method, f"/api/site-groups/{gid}", json=change, headers=tokens["ops"])
        assert r.status_code == 403 and r.json()["error"]["code"] == "group_in_use", r.text
        assert f"meeting {mid}" in r.json()["error"]["message"]
    groups = ok(await c.get("/api/site-groups", headers=tokens["ops"]))
    assert [g["name"] for g in groups if g["id"] == gid] == ["g-ops"]  # nothing changed
    # An admin may (it may run any meeting).
    r = await c.patch(f"/api/site-groups/{gid}", json={"name": "g-admin"}, headers=tokens["admin"])
    assert r.status_code == 200, r.text


async def test_a_delegate_runs_the_floor_but_names_no_delegates(world: World) -> None:
    c, tokens = world.client, world.tokens
    async with world.runtime.db.session() as s:
        staff = dict((await s.execute(select(StaffUser.username, StaffUser.id))).tuples().all())
    mid = ok(
        await c.post(
            "/api/meetings",
            json={"title": "Họp", "invite": {"units": ["79"]}, "delegates": [staff["ops"]]},
            headers=tokens["chair"],
        )
    )["id"]
    r = await c.patch(
        f"/api/meetings/{mid}",
        json={"delegates": [staff["ops"], staff["hcm"]]},
        headers=tokens["ops"],
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_chair", r.text
    r = await c.patch(f"/api/meetings/{mid}", json={"title": "Họp giao ban"}, headers=tokens["ops"])
    assert r.status_code == 200  # a delegate still runs the meeting
    r = await c.patch(f"/api/meetings/{mid}", json={"delegates": []}, headers=tokens["chair"])
    assert r.status_code == 200 and r.json()["delegates"] == []


def _answer(r: httpx.Response, code: str) -> tuple[int, str, str]:
    err = r.json()["error"]
    return r.status_code, err["code"], err["message"].replace(code, "<code>")


async def test_out_of_reach_and_missing_sites_get_the_same_answer(world: World) -> None:
    c, tokens, ids = world.client, world.tokens, world.ids
    elsewhere, nowhere = "00004", "99999"
    p = ids["period"]
    csv = "site_code,new_cases,under_treatment,recovered,deaths,vaccine_doses,zone_level,"
    csv += "distancing_order\n{code},5,10,1,0,100,yellow,false\n"
    calls: list[tuple[str, str, str, dict[str, Any] | None, str | None]] = [
        ("hcm", "GET", "/api/directory/sites/{code}", None, None),
        ("hcm", "POST", "/api/directory/sites/{code}/rotate", None, None),
        ("hcm", "POST", "/api/directory/sites/{code}/revoke", None, None),
        ("hcm", "GET", "/api/media/sites/{code}", None, None),
        ("hcm", "GET", "/api/media/spot/{code}", None, None),
        ("hcm", "POST", "/api/media/wall", {"sites": ["{code}"]}, None),
        ("hcm", "GET", "/api/command/reports?schema=covid19&site_code={code}", None, None),
        ("hcm", "POST", "/api/command/reports",
         {"schema": "covid19", "values": {"new_cases": 1}, "site_code": "{code}"}, None),
        ("hcm", "GET", "/api/command/series-table?schema=covid19&indicator=new_cases"
         "&site_code={code}", None, None),
        ("hcm", "POST", "/api/command/directives/preview", {"target": {"sites": ["{code}"]}},
         None),
        ("hcm", "POST", f"/api/command/reports/import?schema=covid19&period={p}", None, csv),
        ("hcm", "POST", "/api/admin/sites/{code}/sheet", None, None),
        ("26734", "GET", "/api/command/reports?schema=covid19&site_code={code}", None, None),
        ("26734", "POST", "/api/command/reports",
         {"schema": "covid19", "values": {"new_cases": 1}, "site_code": "{code}"}, None),
    ]  # fmt: skip

    def fill(value: Any, code: str) -> Any:
        if isinstance(value, str):
            return value.replace("{code}", code)
        if isinstance(value, list):
            return [fill(v, code) for v in value]
        if isinstance(value, dict):
            return {k: fill(v, code) for k, v in value.items()}
        return value

    for who, method, url, body, raw in calls:
        answers = []
        for code in (elsewhere, nowhere):
            kwargs: dict[str, Any] = {"headers": dict(tokens[who])}
            if raw is not None:
                kwargs["content"] = fill(raw, code).encode()
                kwargs["headers"]["Content-Type"] = "text/csv"
            elif body is not None:
                kwargs["json"] = fill(body, code)
            r = await c.request(method, fill(url, code), **kwargs)
            assert 400 <= r.status_code < 500, (who, url, r.status_code, r.text)
            answers.append(_answer(r, code))
        assert answers[0] == answers[1], (who, method, url, answers)
    # Presence by site id: Hà Nội's site and an id that does not exist.
    answers = []
    for site_id in (ids["hn_site"], 987654):
        r = await c.get(f"/api/presence/sites/{site_id}", headers=tokens["hcm"])
        answers.append(_answer(r, str(site_id)))
    assert answers[0] == answers[1] and answers[0][0] == 404
