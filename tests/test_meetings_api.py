"""Meetings HTTP API: role checks, a site acting only for itself, province-scoped roll
call, reports, audit query/export (read-only), saved groups, OpenAPI."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator

import pytest

from diemcau.directory.records import UnitRecord
from tests.api_support import DEFAULT_STAFF, ApiEnv, api_env

# A legacy-shaped tree: province → district → commune.
TREE = [
    UnitRecord(code="VN", name="Việt Nam", level="country"),
    UnitRecord(code="79", name="Thành phố Hồ Chí Minh", level="province", parent_code="VN"),
    UnitRecord(code="760", name="Quận 1", level="district", parent_code="79"),
    UnitRecord(code="26734", name="Phường Bến Nghé", level="commune", parent_code="760"),
    UnitRecord(code="26737", name="Phường Bến Thành", level="commune", parent_code="760"),
    UnitRecord(code="01", name="Thành phố Hà Nội", level="province", parent_code="VN"),
    UnitRecord(code="001", name="Quận Ba Đình", level="district", parent_code="01"),
    UnitRecord(code="00004", name="Phường Ba Đình", level="commune", parent_code="001"),
]


Env = ApiEnv


@pytest.fixture
async def env(sqlite_url: str) -> AsyncIterator[Env]:
    async with api_env(
        sqlite_url, TREE, ("26734", "26737", "00004"), {**DEFAULT_STAFF, "chair2": ("chair", None)}
    ) as e:
        yield e


async def test_meeting_through_the_api(env: Env) -> None:
    c = env.client
    chair = await env.login("chair")
    body = {"title": "Họp phòng chống bão", "invite": {"units": ["79"], "kinds": ["commune"]}}
    r = await c.post("/api/meetings/invites/preview", json=body["invite"], headers=chair)
    assert r.json() == {"count": 2}
    # Bad input: an unknown unit code, an unknown field, an empty title.
    r = await c.post(
        "/api/meetings", json={"title": "x", "invite": {"units": ["99"]}}, headers=chair
    )
    assert r.status_code == 404 and "'99'" in r.json()["error"]["message"]
    r = await c.post("/api/meetings", json={**body, "colour": "red"}, headers=chair)
    assert r.status_code == 422
    r = await c.post("/api/meetings", json={**body, "title": ""}, headers=chair)
    assert r.status_code == 422
    r = await c.post("/api/meetings", json=body, headers=chair)
    assert r.status_code == 201, r.text
    mid = r.json()["id"]
    assert r.json()["invited_count"] == 2

    # Sites cannot run meetings; another chair cannot either.
    ben_nghe = await env.site("26734")
    ba_dinh = await env.site("00004")
    assert (await c.post(f"/api/meetings/{mid}/start", headers=ben_nghe)).status_code == 403
    chair2 = await env.login("chair2")
    r = await c.post(f"/api/meetings/{mid}/start", headers=chair2)
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_chair"
    r = await c.post(f"/api/meetings/{mid}/start", headers=chair)
    assert r.status_code == 200 and r.json()["state"] == "live"

    # An uninvited site (Hà Nội) is refused; invited ones join and raise hands.
    r = await c.post(f"/api/site/meetings/{mid}/join", headers=ba_dinh)
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_invited"
    r = await c.get("/api/site/meetings/current", headers=ba_dinh)
    assert r.status_code == 200 and r.json()["meeting"] is None  # no meeting is not an error
    # Bad input: a join over HTTP with no live site session (it would count the site
    # present, and let it be given the floor, without it ever connecting).
    r = await c.post(f"/api/site/meetings/{mid}/join", headers=ben_nghe)
    assert r.status_code == 409 and r.json()["error"]["code"] == "no_session", r.text
    att = (await c.get(f"/api/meetings/{mid}/attendance", headers=chair)).json()
    assert att["total"]["present"] == 0  # nothing changed
    r = await c.post(
        f"/api/meetings/{mid}/floor/grant", json={"site_codes": ["26734"]}, headers=chair
    )
    assert r.status_code >= 400, r.text  # not present: no floor
    await env.connect("26734")
    assert (await c.post(f"/api/site/meetings/{mid}/join", headers=ben_nghe)).status_code == 200
    r = await c.post(f"/api/site/meetings/{mid}/hand", headers=ben_nghe)
    assert r.json() == {"raised": True, "position": 1}
    current = (await c.get("/api/site/meetings/current", headers=ben_nghe)).json()
    assert current["meeting"]["id"] == mid and current["present"] is True
    # A site cannot grant itself the floor.
    r = await c.post(
        f"/api/meetings/{mid}/floor/grant", json={"site_codes": ["26734"]}, headers=ben_nghe
    )
    assert r.status_code == 403
    queue = (await c.get(f"/api/meetings/{mid}/queue", headers=chair)).json()
    assert [(q["code"], q["province_name"]) for q in queue] == [("26734", "Thành phố Hồ Chí Minh")]
    r = await c.post(f"/api/meetings/{mid}/floor/next", headers=chair)
    assert r.status_code == 200 and r.json()["speakers"][0]["code"] == "26734"
    r = await c.post(f"/api/meetings/{mid}/floor/mute-all", headers=chair)
    assert r.json()["muted_all"] is True
    r = await c.post(f"/api/meetings/{mid}/floor/revoke", json={}, headers=chair)
    assert r.json()["speakers"] == []
    r = await c.post(f"/api/meetings/{mid}/extend", json={"minutes": 20}, headers=chair)
    assert r.status_code == 200 and r.json()["ends_at"]

    # Province officer: its province only.
    hcm = await env.login("hcm")
    att = (await c.get(f"/api/meetings/{mid}/attendance", headers=hcm)).json()
    assert att["total"]["invited"] == 2 and att["total"]["present"] == 1
    assert [p["province_name"] for p in att["provinces"]] == ["Thành phố Hồ Chí Minh"]
    r = await c.post(f"/api/meetings/{mid}/floor/next", headers=hcm)
    assert r.status_code == 403

    r = await c.post(
        f"/api/meetings/{mid}/conclusions",
        json={"body": "Kết luận cuộc họp", "attachments": [{"name": "kl.pdf", "size": 1}]},
        headers=chair,
    )
    assert r.status_code == 201
    cid = r.json()["id"]
    r = await c.post(f"/api/site/conclusions/{cid}/ack", headers=ben_nghe)
    assert r.status_code == 200
    status = (await c.get(f"/api/conclusions/{cid}/status", headers=chair)).json()
    assert status["acknowledged_count"] == 1 and status["pending_count"] == 1

    assert (await c.post(f"/api/meetings/{mid}/end", headers=chair)).status_code == 200
    r = await c.get(f"/api/meetings/{mid}/attendance/report.csv", headers=chair)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert rows[0][1] == "Mã điểm cầu / Site code" and len(rows) == 3
    r = await c.get(f"/api/meetings/{mid}/attendance/report.html", headers=chair)
    assert "BÁO CÁO ĐIỂM DANH" in r.text and "Phường Bến Nghé" in r.text

    # The audit log: every chair action, readable and exportable, never writable.
    r = await c.get(f"/api/audit?meeting_id={mid}", headers=chair)
    actions = [x["action"] for x in r.json()["items"]]
    assert actions == [
        "meeting.create",
        "meeting.start",
        "floor.next",
        "floor.mute_all",
        "floor.revoke",
        "meeting.extend",
        "conclusion.publish",
        "meeting.end",
    ]
    r = await c.get(f"/api/audit/export.csv?meeting_id={mid}", headers=chair)
    assert r.status_code == 200 and "floor.next" in r.text
    for method in ("PUT", "PATCH", "DELETE"):
        r = await c.request(method, "/api/audit", headers=chair)
        assert r.status_code == 405, method
    assert (await c.get("/api/audit", headers=hcm)).status_code == 403
    assert (await c.get("/api/audit", headers=ben_nghe)).status_code == 403


async def test_saved_groups_invite_and_openapi(env: Env) -> None:
    c = env.client
    ops = await env.login("ops")
    r = await c.post(
        "/api/site-groups",
        json={"name": "Quận 1 và Ba Đình", "invite": {"units": ["760", "001"]}},
        headers=ops,
    )
    assert r.status_code == 201, r.text
    gid = r.json()["id"]
    assert r.json()["site_count"] == 5  # two district sites and three communes
    r = await c.post(
        "/api/site-groups",
        json={"name": "Quận 1 và Ba Đình", "invite": {"everyone": True}},
        headers=ops,
    )
    assert r.status_code == 409
    chair = await env.login("chair")
    r = await c.post(
        "/api/meetings",
        json={"title": "Nhóm", "invite": {"groups": [gid], "kinds": ["commune"]}},
        headers=chair,
    )
    # The kind filter narrows the group's areas: its three communes.
    assert r.json()["invited_count"] == 3
    mid = r.json()["id"]
    # While the chair's scheduled meeting invites the group, its creator may not change
    # it (that would change the chair's invitations); once started, the meeting keeps
    # the sites it resolved.
    r = await c.patch(f"/api/site-groups/{gid}", json={"invite": {"units": ["001"]}}, headers=ops)
    assert r.status_code == 403 and r.json()["error"]["code"] == "group_in_use"
    assert (await c.post(f"/api/meetings/{mid}/start", headers=chair)).status_code == 200
    assert (await c.post(f"/api/meetings/{mid}/end", headers=chair)).status_code == 200
    r = await c.patch(f"/api/site-groups/{gid}", json={"invite": {"units": ["001"]}}, headers=ops)
    assert r.json()["site_count"] == 2
    assert (await c.delete(f"/api/site-groups/{gid}", headers=ops)).status_code == 204
    audit = (await c.get("/api/audit?action=group.delete", headers=chair)).json()
    assert audit["total"] == 1 and audit["items"][0]["actor_name"] == "ops"
    spec = (await c.get("/openapi.json")).json()
    for path in (
        "/api/meetings",
        "/api/meetings/{meeting_id}/floor/grant",
        "/api/meetings/{meeting_id}/attendance/report.csv",
        "/api/site/meetings/{meeting_id}/join",
        "/api/audit",
    ):
        assert path in spec["paths"], path
