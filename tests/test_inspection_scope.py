"""Inspection routes answer an out-of-reach site or record like one that does not exist.

Bad inputs tried, by name: the Hồ Chí Minh City officer inspecting, putting on the video
wall and planning a round (by list, and by a sample of a province) with a site or
province of Hà Nội ("exists elsewhere") and with a code that exists nowhere; the same
officer reaching Hà Nội's inspection, round and round item by id (every route that
takes one) and an id that exists nowhere. Each pair of full answers (status and body,
the code or id put back to one placeholder) must be identical, so they tell nothing
about which sites or records exist elsewhere (docs/security.md, "Who may do what"). A
sample drawn by the officer, with or without its own province's code, holds its own
province's communes only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.api_world import World, build_world, ok

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ELSEWHERE, NOWHERE = "00004", "99999"  # Ba Đình (Hà Nội), and no site at all
HCM_SITE = "26734"
MISSING_ID = 987654


@pytest.fixture
async def world(sqlite_url: str) -> AsyncIterator[World]:
    async with build_world(sqlite_url) as w:
        yield w


def _fill(value: Any, key: str) -> Any:
    if isinstance(value, str):
        return value.replace("{x}", key)
    if isinstance(value, list):
        return [_fill(v, key) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, key) for k, v in value.items()}
    return value


async def _full(
    world: World, method: str, url: str, body: Any, key: str, raw: bytes | None = None
) -> tuple[int, str]:
    """The whole answer, with `key` (the code or id asked for) put back to a placeholder."""
    kwargs: dict[str, Any] = {"headers": dict(world.tokens["hcm"])}
    if raw is not None:
        kwargs["content"] = raw
        kwargs["headers"]["Content-Type"] = "image/jpeg"
    elif body is not None:
        kwargs["json"] = _fill(body, key)
    r = await world.client.request(method, _fill(url, key), **kwargs)
    assert 400 <= r.status_code < 500, (method, url, key, r.status_code, r.text)
    return r.status_code, r.text.replace(key, "<x>")


async def _same(
    world: World, method: str, url: str, body: Any, pair: tuple[str, str], **kw: Any
) -> tuple[int, str]:
    answers = [await _full(world, method, url, body, key, **kw) for key in pair]
    assert answers[0] == answers[1], (method, url, body, answers)
    return answers[0]


async def test_out_of_province_and_unknown_sites_get_the_same_answer(world: World) -> None:
    codes = (ELSEWHERE, NOWHERE)
    status, _ = await _same(world, "POST", "/api/inspections", {"site_code": "{x}"}, codes)
    assert status == 404
    status, _ = await _same(world, "POST", "/api/inspection/wall", {"sites": ["{x}"]}, codes)
    assert status == 422
    # With one of its own sites on the same page or in the same round: still the same.
    mixed = {"sites": [HCM_SITE, "{x}"]}
    assert (await _same(world, "POST", "/api/inspection/wall", mixed, codes))[0] == 422
    rounds = "/api/inspection/rounds"
    listed = {"title": "Đợt", "sites": [HCM_SITE, "{x}"]}
    assert (await _same(world, "POST", rounds, listed, codes))[0] == 422
    sample = {"title": "Đợt", "sample": {"n": 1, "province": "{x}"}}
    assert (await _same(world, "POST", rounds, sample, ("01", "98")))[0] == 422
    # A round item of Hà Nội named while inspecting one's own site, and one that does not
    # exist: the same answer as well.
    pair = (str(world.ids["item_id"]), str(MISSING_ID))
    body = {"site_code": HCM_SITE, "round_item_id": 0}

    async def inspect_item(key: str) -> tuple[int, str]:
        r = await world.client.post(
            "/api/inspections",
            json={**body, "round_item_id": int(key)},
            headers=world.tokens["hcm"],
        )
        return r.status_code, r.text.replace(key, "<x>")

    answers = [await inspect_item(key) for key in pair]
    assert answers[0] == answers[1] and answers[0][0] == 404, answers
    # Nothing of Hà Nội was opened or planned by any of it.
    mine = ok(await world.client.get("/api/inspection/rounds", headers=world.tokens["hcm"]))
    assert mine["items"] == []


async def test_out_of_province_and_unknown_records_get_the_same_answer(world: World) -> None:
    ids = world.ids
    ins = (str(ids["inspection_id"]), str(MISSING_ID))
    for method, path in [
        ("GET", ""),
        ("POST", "/keepalive"),
        ("POST", "/end"),
        ("POST", "/call"),
        ("POST", "/call/end"),
    ]:
        status, _ = await _same(world, method, "/api/inspections/{x}" + path, None, ins)
        assert status == 404
    rnd = (str(ids["round_id"]), str(MISSING_ID))
    item = ids["item_id"]
    for method, path, body, raw in [
        ("GET", "", None, None),
        ("PUT", f"/items/{item}", {"verdict": "pass"}, None),
        ("PUT", f"/items/{item}/snapshot", None, b"\xff\xd8\xff\xe0 not really an image"),
        ("GET", f"/items/{item}/snapshot", None, None),
        ("POST", "/close", None, None),
        ("GET", "/report.html", None, None),
        ("GET", "/report.csv", None, None),
    ]:
        url = "/api/inspection/rounds/{x}" + path
        status, _ = await _same(world, method, url, body, rnd, raw=raw)
        assert status == 404


async def test_an_officers_sample_draws_from_its_own_province_only(world: World) -> None:
    c, hcm = world.client, world.tokens["hcm"]
    sites = world.runtime.sites
    own = {s.code for s in await sites.all() if s.province_code == "79" and s.kind == "commune"}
    assert own, "the world has communes in Hồ Chí Minh City"
    for sample in ({"n": len(own)}, {"n": len(own), "province": "79"}):
        body = {"title": "Mẫu", "sample": sample}
        made = ok(await c.post("/api/inspection/rounds", json=body, headers=hcm))
        assert {i["site_code"] for i in made["items"]} == own, made
    # One more than its province holds is too many, whatever the country holds.
    r = await c.post(
        "/api/inspection/rounds",
        json={"title": "Mẫu", "sample": {"n": len(own) + 1}},
        headers=hcm,
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "sample_too_big", r.text
