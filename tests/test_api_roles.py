"""Every HTTP route, walked with every kind of caller (docs/architecture.md: role-checked).

The route table is `tests/route_table.py`. A route added to the app without a
row there fails `test_every_route_is_in_the_table`.

Callers tried on every non-public route: no token (401), a garbage token (401),
a site token on staff routes (403), a staff token on site routes (403), each
staff role its route's role gate leaves out (403), the province officer on
role-gated routes (403) and on Hà Nội's resources, the site on another site's
data. Every error body is ``{"error": {"code", "message"}}`` and no body
contains a Python traceback.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.api_world import World, build_world
from tests.route_table import (
    HN_MARKERS,
    NOT_WALKED,
    ROUTES,
    STAFF_ROLES,
    Reach,
    Route,
    _fill,
    app_routes,
    unstarted_app,
)


@pytest.fixture
async def world(sqlite_url: str) -> AsyncIterator[World]:
    async with build_world(sqlite_url) as w:
        yield w


def assert_error(r: httpx.Response, *statuses: int) -> None:
    assert r.status_code in statuses, (r.request.method, str(r.request.url), r.status_code, r.text)
    err = r.json()["error"]
    assert isinstance(err["code"], str) and err["code"]
    assert isinstance(err["message"], str) and err["message"]
    assert "Traceback" not in r.text


async def call(w: World, route: Route, headers: dict[str, str] | None) -> httpx.Response:
    kwargs: dict[str, Any] = {"headers": dict(headers or {})}
    if route.raw is not None:
        kwargs["content"] = route.raw
        kwargs["headers"]["Content-Type"] = "text/csv"
    elif route.body is not None:
        kwargs["json"] = _fill(route.body, w.ids)
    r = await w.client.request(route.method, route.target(w.ids), **kwargs)
    assert "Traceback" not in r.text
    assert r.status_code < 500, (route.method, route.path, r.status_code, r.text)
    return r


def test_every_route_is_in_the_table() -> None:
    """A new route must be added to `ROUTES` (or `NOT_WALKED`, with its reason)."""
    app = unstarted_app()
    table = {(r.method, r.path) for r in ROUTES}
    assert len(table) == len(ROUTES), "a route is listed twice"
    assert table | NOT_WALKED == app_routes(app)


async def test_no_token_and_bad_token_are_refused(world: World) -> None:
    for route in ROUTES:
        if route.access == "public":
            continue
        for headers in (None, {"Authorization": "Bearer not.a.token"}):
            assert_error(await call(world, route, headers), 401)


async def test_a_site_token_never_reaches_staff_routes(world: World) -> None:
    for route in ROUTES:
        if route.access == "staff":
            assert_error(await call(world, route, world.tokens["26734"]), 403)


# A staff account of each role in the test world.
ACCOUNT = {"admin": "admin", "chair": "chair", "operator": "ops", "province_officer": "hcm"}


async def test_role_gates_refuse_the_roles_they_leave_out(world: World) -> None:
    """Each route with a role gate answers 403 to every staff role it leaves out."""
    failures = []
    for route in ROUTES:
        if route.access not in ("staff", "any"):
            continue
        for role in sorted(STAFF_ROLES - route.admitted()):
            r = await call(world, route, world.tokens[ACCOUNT[role]])
            if r.status_code != 403:
                failures.append(f"{route.method} {route.path} as {role}: {r.status_code}")
    assert not failures, "\n".join(failures)


async def test_a_staff_token_never_acts_as_a_site(world: World) -> None:
    for route in ROUTES:
        if route.access == "site":
            for who in ("chair", "admin", "hcm"):
                assert_error(await call(world, route, world.tokens[who]), 403)


def check_reach(route: Route, reach: Reach, r: httpx.Response) -> str | None:
    """None if `r` is what `reach` promises, else what went wrong."""
    try:
        if reach == "role":
            assert_error(r, 403)
        elif reach == "refused":
            assert_error(r, *route.refused_with)
        elif reach == "scoped":
            assert r.status_code == 200, r.text
            leaked = [m for m in HN_MARKERS if m in r.text]
            assert not leaked, f"leaks {leaked}: {r.text[:200]}"
        elif r.status_code >= 400:
            assert_error(r, r.status_code)
    except AssertionError as exc:
        return f"{route.method} {route.path} ({reach}): {exc}"
    return None


async def test_province_officer_stays_in_its_province(world: World) -> None:
    failures = []
    for route in ROUTES:
        if route.access in ("staff", "any"):
            r = await call(world, route, world.tokens["hcm"])
            failures.append(check_reach(route, route.officer, r))
    assert not any(failures), "\n".join(f for f in failures if f)


async def test_a_site_sees_and_acts_only_for_itself(world: World) -> None:
    failures = []
    for route in ROUTES:
        if route.access in ("site", "any"):
            r = await call(world, route, world.tokens["26734"])
            failures.append(check_reach(route, route.site, r))
    assert not any(failures), "\n".join(f for f in failures if f)


async def test_unfiltered_views_are_scoped_too(world: World) -> None:
    """Without a province filter, the officer's totals leave Hà Nội's report out (the
    chair's include it), and a site's report list holds only its own reports."""
    c, ids = world.client, world.ids
    p = ids["period"]
    agg = f"/api/command/aggregate?schema=covid19&from={p}&to={p}"
    series = f"/api/command/series?schema=covid19&indicator=new_cases&from={p}&to={p}"
    for who, cases in (("chair", 3), ("hcm", 0)):
        r = await c.get(agg, headers=world.tokens[who])
        assert r.json()["national"][0]["values"]["new_cases"]["value"] == cases, (who, r.text)
        r = await c.get(series, headers=world.tokens[who])
        assert r.json()["national"] == [cases], (who, r.text)
    for url in (agg, series, f"/api/command/export?schema=covid19&what=reports&from={p}&to={p}"):
        r = await c.get(url, headers=world.tokens["hcm"])
        assert r.status_code == 200 and not any(m in r.text for m in HN_MARKERS), r.text
    r = await c.get(
        f"/api/command/reports?schema=covid19&province_id={ids['hn_province']}",
        headers=world.tokens["26734"],
    )
    assert r.status_code in (200, 403) and "00004" not in r.text
    r = await c.get("/api/command/reports?schema=covid19", headers=world.tokens["00004"])
    assert [x["id"] for x in r.json()] == [ids["report_id"]]
    r = await c.get("/api/command/reports?schema=covid19", headers=world.tokens["26734"])
    assert r.json() == []
