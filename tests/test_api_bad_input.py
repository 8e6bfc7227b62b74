"""Bad input to the main write endpoints: a clear 4xx error, and nothing changes.

The rule is in docs/architecture.md ("Rules every service keeps").

Each test lists the bad inputs it sends; after all of them, every table of the
store holds exactly what it held before (compared row by row). Runs on SQLite
and PostgreSQL, whose limits differ (PostgreSQL refuses NUL characters in text
and integers past 64 bits).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from diemcau.meetings.alive import ALIVE_KEY
from diemcau.store.models import Base
from tests.api_world import World, build_world
from tests.route_table import ROUTES, _fill
from tests.test_command_support import covid

# Closing the session of a site that has none answers {"closed": false}, whatever the id.
NOTHING_TO_CLOSE = {("POST", "/api/presence/sites/{site_id}/close")}
HUGE = 2**63  # one past the largest 64-bit integer a database column holds
LONG = "x" * 100_001


@pytest.fixture
async def world(any_db_url: str) -> AsyncIterator[World]:
    async with build_world(any_db_url) as w:
        yield w


async def snapshot(w: World) -> dict[str, list[str]]:
    """Every row of every table, as text, sorted (the whole small test store)."""
    out: dict[str, list[str]] = {}
    async with w.runtime.db.session() as s:
        for table in Base.metadata.sorted_tables:
            rows = (await s.execute(select(table))).all()
            # The meetings' alive mark is rewritten every few seconds while a site is
            # present (meetings.alive), whatever the requests: not a change they made.
            rows = [r for r in rows if not (table.name == "settings" and r[0] == ALIVE_KEY)]
            out[table.name] = sorted(repr(tuple(r)) for r in rows)
    return out


# The world's Ba Đình site keeps a live session (a site joins a meeting only with one),
# whose transitions the hub writes on its own timer (online, and degraded and back when
# a loaded machine delays a heartbeat). No route writes this table, so a request that
# was not refused would show in other tables too.
BACKGROUND_TABLES = {"presence_events"}


def changed(before: dict[str, list[str]], after: dict[str, list[str]]) -> list[str]:
    tables = sorted((set(before) | set(after)) - BACKGROUND_TABLES)
    return [t for t in tables if before.get(t) != after.get(t)]


async def refused(
    w: World,
    method: str,
    url: str,
    headers: dict[str, str],
    *,
    status: int | tuple[int, ...],
    says: str = "",
    **kwargs: Any,
) -> str | None:
    """None if the request is refused as promised, else what went wrong."""
    statuses = (status,) if isinstance(status, int) else status
    headers = {**headers, **(kwargs.pop("extra_headers", None) or {})}
    if "content" in kwargs:
        headers.setdefault("Content-Type", "application/json")
    r = await w.client.request(method, url, headers=headers, **kwargs)
    what = f"{method} {url} {str(kwargs)[:120]}"
    try:
        body = r.json()
    except ValueError:
        return f"{what}: {r.status_code} not JSON: {r.text[:200]}"
    if r.status_code not in statuses:
        return f"{what}: {r.status_code} (wanted {statuses}): {r.text[:300]}"
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict) or not err.get("code") or not err.get("message"):
        return f"{what}: error body without code/message: {r.text[:200]}"
    if "Traceback" in r.text or "sqlalchemy" in r.text.lower():
        return f"{what}: internals in the body: {r.text[:300]}"
    if says and says.lower() not in err["message"].lower():
        return f"{what}: message {err['message']!r} does not say {says!r}"
    return None


async def run_cases(w: World, cases: list[tuple[Any, ...]]) -> None:
    """Send each case; then assert all were refused and the store did not change."""
    before = await snapshot(w)
    failures = []
    for method, url, headers, status, says, kwargs in cases:
        failures.append(await refused(w, method, url, headers, status=status, says=says, **kwargs))
    after = await snapshot(w)
    assert not any(failures), "\n".join(f for f in failures if f)
    assert changed(before, after) == []


def _json(body: Any) -> dict[str, Any]:
    return {"json": body}


async def test_staff_and_site_login_bad_input(world: World) -> None:
    """Bad inputs: malformed JSON, a JSON array, an empty body, a number as username,
    an oversize username/password, a NUL character in the username, an unknown user,
    a join code without a colon, an unknown site, a NUL in the join code."""
    w, no = world, {"Content-Type": "application/json"}
    login, site = "/api/auth/login", "/api/auth/site-login"
    cases: list[tuple[Any, ...]] = [
        ("POST", login, no, 422, "JSON", {"content": b'{"username": "chair", '}),
        ("POST", login, no, 422, "", {"content": b"[1, 2]"}),
        ("POST", login, no, 422, "", {"content": b""}),
        ("POST", login, no, 422, "username", _json({"username": 5, "password": "x"})),
        ("POST", login, no, 422, "username", _json({"username": LONG, "password": "x"})),
        ("POST", login, no, 422, "password", _json({"username": "chair", "password": LONG})),
        ("POST", login, no, (401, 422), "", _json({"username": "ch\x00air", "password": "x"})),
        ("POST", login, no, 401, "wrong", _json({"username": "nobody", "password": "x"})),
        ("POST", site, no, 401, "", _json({"join_code": "no-colon-here"})),
        ("POST", site, no, 401, "", _json({"join_code": "99999:secret"})),
        ("POST", site, no, (401, 422), "", _json({"join_code": "000\x0004:secret"})),
        ("POST", site, no, 422, "join_code", _json({"join_code": ["a"]})),
    ]
    await run_cases(w, cases)


async def test_create_meeting_bad_input(world: World) -> None:
    """Bad inputs: malformed JSON, title as a number, an empty and an oversize title, an
    oversize agenda, an invitation as a string, an unknown unit, an unknown group, an
    unknown field, negative reminder/late delays, a chair id that does not exist and
    one past 64 bits, a negative delegate id, a date that is not a date, an end
    before the start."""
    w = world
    chair = w.tokens["chair"]
    url = "/api/meetings"
    inv = {"units": ["79"]}
    cases: list[tuple[Any, ...]] = [
        ("POST", url, chair, 422, "JSON", {"content": b'{"title": '}),
        ("POST", url, chair, 422, "title", _json({"title": 5, "invite": inv})),
        ("POST", url, chair, 422, "title", _json({"title": "", "invite": inv})),
        ("POST", url, chair, 422, "title", _json({"title": LONG, "invite": inv})),
        ("POST", url, chair, 422, "agenda", _json({"title": "t", "agenda": LONG, "invite": inv})),
        ("POST", url, chair, 422, "invite", _json({"title": "t", "invite": "everyone"})),
        ("POST", url, chair, 404, "'99'", _json({"title": "t", "invite": {"units": ["99"]}})),
        ("POST", url, chair, 404, "", _json({"title": "t", "invite": {"groups": [999999]}})),
        ("POST", url, chair, 422, "colour", _json({"title": "t", "invite": inv, "colour": 1})),
        (
            "POST",
            url,
            chair,
            422,
            "reminder_lead_s",
            _json({"title": "t", "invite": inv, "reminder_lead_s": -1}),
        ),
        (
            "POST",
            url,
            chair,
            422,
            "late_after_s",
            _json({"title": "t", "invite": inv, "late_after_s": -5}),
        ),
        (
            "POST",
            url,
            chair,
            (404, 422),
            "",
            _json({"title": "t", "invite": inv, "chair_user_id": 999999}),
        ),
        (
            "POST",
            url,
            chair,
            (404, 422),
            "",
            _json({"title": "t", "invite": inv, "chair_user_id": HUGE}),
        ),
        (
            "POST",
            url,
            chair,
            (404, 422),
            "",
            _json({"title": "t", "invite": inv, "delegates": [-1]}),
        ),
        (
            "POST",
            url,
            chair,
            422,
            "scheduled_start",
            _json({"title": "t", "invite": inv, "scheduled_start": "tomorrow"}),
        ),
        (
            "POST",
            url,
            chair,
            422,
            "",
            _json(
                {
                    "title": "t",
                    "invite": inv,
                    "scheduled_start": "2030-01-02T10:00:00Z",
                    "scheduled_end": "2030-01-02T09:00:00Z",
                }
            ),
        ),
    ]
    await run_cases(w, cases)


async def test_grant_floor_bad_input(world: World) -> None:
    """Bad inputs: no site named, three sites, an unknown site id, a negative one, one
    past 64 bits, a site id as text, an unknown site code, an oversize code, an
    unknown meeting, a negative meeting id, a meeting id past 64 bits, a meeting id
    that is not a number, a site that is not invited, a site not present."""
    w = world
    chair = w.tokens["chair"]
    mid = w.ids["meeting_id"]
    url = f"/api/meetings/{mid}/floor/grant"
    cases: list[tuple[Any, ...]] = [
        ("POST", url, chair, 422, "name one or two sites", _json({})),
        ("POST", url, chair, 422, "site_ids", _json({"site_ids": [1, 2, 3]})),
        ("POST", url, chair, 403, "not invited", _json({"site_ids": [999999]})),
        ("POST", url, chair, 403, "not invited", _json({"site_ids": [-1]})),
        ("POST", url, chair, (404, 409, 422), "", _json({"site_ids": [HUGE]})),
        ("POST", url, chair, 422, "site_ids", _json({"site_ids": ["ba đình"]})),
        ("POST", url, chair, 404, "'nope'", _json({"site_codes": ["nope"]})),
        ("POST", url, chair, (404, 422), "", _json({"site_codes": [LONG]})),
        ("POST", "/api/meetings/999999/floor/grant", chair, 404, "", _json({"site_ids": [1]})),
        ("POST", "/api/meetings/-1/floor/grant", chair, (404, 422), "", _json({"site_ids": [1]})),
        (
            "POST",
            f"/api/meetings/{HUGE}/floor/grant",
            chair,
            (404, 422),
            "",
            _json({"site_ids": [1]}),
        ),
        (
            "POST",
            "/api/meetings/abc/floor/grant",
            chair,
            422,
            "meeting_id",
            _json({"site_ids": [1]}),
        ),
        ("POST", url, chair, (403, 409, 422), "", _json({"site_codes": ["26734"]})),
    ]
    await run_cases(w, cases)


async def test_issue_directive_bad_input(world: World) -> None:
    """Bad inputs: malformed JSON, an unknown priority, a deadline that is not a date, a
    deadline in the past, an empty and an oversize title, an empty target, an unknown
    province, an unknown site, an unknown target field, a too-short client id,
    attachments as a string; then acknowledge/complete/remind unknown directive ids
    (negative, past 64 bits, absent)."""
    w = world
    chair, site = w.tokens["chair"], w.tokens["00004"]
    url = "/api/command/directives"
    ok_body: dict[str, Any] = {"title": "t", "body": "b", "target": {"provinces": ["01"]}}
    cases: list[tuple[Any, ...]] = [
        ("POST", url, chair, 422, "JSON", {"content": b"{"}),
        ("POST", url, chair, 422, "priority", _json({**ok_body, "priority": "asap"})),
        ("POST", url, chair, 422, "deadline", _json({**ok_body, "deadline": "soon"})),
        ("POST", url, chair, 422, "deadline", _json({**ok_body, "deadline": "2001-01-01T00:00Z"})),
        ("POST", url, chair, 422, "title", _json({**ok_body, "title": ""})),
        ("POST", url, chair, 422, "title", _json({**ok_body, "title": LONG})),
        ("POST", url, chair, 422, "", _json({**ok_body, "target": {}})),
        ("POST", url, chair, (404, 422), "99", _json({**ok_body, "target": {"provinces": ["99"]}})),
        ("POST", url, chair, (404, 422), "nope", _json({**ok_body, "target": {"sites": ["nope"]}})),
        ("POST", url, chair, 422, "planet", _json({**ok_body, "target": {"planet": True}})),
        ("POST", url, chair, 422, "client_id", _json({**ok_body, "client_id": "x"})),
        ("POST", url, chair, 422, "attachments", _json({**ok_body, "attachments": "a.pdf"})),
        ("POST", f"{url}/999999/ack", site, 404, "", {}),
        ("POST", f"{url}/-1/ack", site, (404, 422), "", {}),
        ("POST", f"{url}/{HUGE}/ack", site, (404, 422), "", {}),
        ("POST", f"{url}/{HUGE}/complete", site, (404, 422), "", _json({"note": "x"})),
        ("POST", f"{url}/999999/remind", chair, 404, "", _json({})),
        ("GET", f"{url}/{HUGE}", chair, (404, 422), "", {}),
    ]
    await run_cases(w, cases)


async def test_compose_directive_and_attachments_bad_input(world: World) -> None:
    """Bad inputs for the directives page: a preview and a compose naming a group id past
    64 bits, a negative and an absent group, groups as a string, a directive without its
    wrapper, a file link to another server's path shape, an upload with a NUL in its name,
    a refused extension, no name, a file id past 64 bits and a wrong signature."""
    w = world
    chair = w.tokens["chair"]
    ok_dir: dict[str, Any] = {"title": "t", "body": "b", "target": {"provinces": ["01"]}}
    prev, comp = "/api/command/directives/preview", "/api/command/directives/compose"
    files = "/api/command/files"
    pdf = {"content": b"%PDF-1.4\n", "extra_headers": {"Content-Type": "application/pdf"}}
    cases: list[tuple[Any, ...]] = [
        ("POST", prev, chair, (404, 422), "", _json({"groups": [HUGE]})),
        ("POST", prev, chair, (404, 422), "", _json({"groups": [-1]})),
        ("POST", prev, chair, 404, "", _json({"groups": [999999]})),
        ("POST", prev, chair, 422, "groups", _json({"groups": "g"})),
        ("POST", comp, chair, 422, "directive", _json(ok_dir)),
        ("POST", comp, chair, (404, 422), "", _json({"directive": ok_dir, "groups": [HUGE]})),
        (
            "POST",
            comp,
            chair,
            422,
            "file",
            _json({"directive": {**ok_dir, "attachments": [{"name": "a", "url": files + "/x"}]}}),
        ),
        ("POST", files + "?name=a%00b.pdf", chair, 422, "", pdf),
        ("POST", files + "?name=a.exe", chair, 422, "exe", pdf),
        ("POST", files, chair, 422, "name", pdf),
        ("GET", f"{files}/{HUGE}?sig=x", chair, (404, 422), "", {}),
        ("GET", f"{files}/1?sig=" + "0" * 32, chair, 404, "", {}),
    ]
    await run_cases(w, cases)


async def test_submit_report_bad_input(world: World) -> None:
    """Bad inputs: an unknown schema, values as a list, a negative count, a count as
    text, a float where an integer is due, a count past 64 bits, an unknown indicator,
    an unknown zone level, a period that is not a date, an oversize note, a site
    filing for another site, a correction of an unknown report (absent, negative,
    past 64 bits), a correction with a negative value."""
    w = world
    site = w.tokens["00004"]
    url = "/api/command/reports"
    day = w.ids["period"]

    def rep(**over: Any) -> dict[str, Any]:
        return _json({"schema": "covid19", "period": day, "values": covid(**over)})

    rid = w.ids["report_id"]
    cases: list[tuple[Any, ...]] = [
        ("POST", url, site, (404, 422), "nope", _json({"schema": "nope", "values": covid()})),
        ("POST", url, site, 422, "values", _json({"schema": "covid19", "values": [1, 2]})),
        ("POST", url, site, 422, "deaths", rep(deaths=-1)),
        ("POST", url, site, 422, "new_cases", rep(new_cases="many")),
        ("POST", url, site, 422, "new_cases", rep(new_cases=1.5)),
        ("POST", url, site, 422, "new_cases", rep(new_cases=HUGE)),
        ("POST", url, site, 422, "new_cases", rep(new_cases=10**400)),
        ("POST", url, site, 422, "new_cases", rep(new_cases=1e300)),
        ("POST", url, site, 422, "mood", rep(mood=3)),
        ("POST", url, site, 422, "zone_level", rep(zone_level="purple")),
        (
            "POST",
            url,
            site,
            422,
            "period",
            _json({"schema": "covid19", "period": "last week", "values": covid()}),
        ),
        (
            "POST",
            url,
            site,
            422,
            "note",
            _json({"schema": "covid19", "values": covid(), "note": LONG}),
        ),
        (
            "POST",
            url,
            site,
            422,  # another site's code reads like an unknown one (no_site)
            "site_code",
            _json({"schema": "covid19", "values": covid(), "site_code": "26734"}),
        ),
        ("PATCH", f"{url}/999999", site, 404, "", _json({"values": {"deaths": 1}})),
        ("PATCH", f"{url}/-1", site, (404, 422), "", _json({"values": {"deaths": 1}})),
        ("PATCH", f"{url}/{HUGE}", site, (404, 422), "", _json({"values": {"deaths": 1}})),
        ("PATCH", f"{url}/{rid}", site, 422, "deaths", _json({"values": {"deaths": -3}})),
        ("GET", f"{url}/{HUGE}", site, (404, 422), "", {}),
    ]
    await run_cases(w, cases)


async def test_import_csv_bad_input(world: World) -> None:
    """Bad inputs: bytes that are not UTF-8, an empty body, a header only with no
    line, a missing site_code column, an unknown site (the line is named), a negative
    value on line 3 after a good line 2 (nothing of the file is kept), a value that
    is not a number, an unknown schema, a period that is not a date, a body over the
    size limit, a NUL character in a cell."""
    w = world
    ops = w.tokens["admin"]
    base = "/api/command/reports/import?schema=covid19&period=" + w.ids["period"]
    head = (
        "site_code,new_cases,under_treatment,recovered,deaths,vaccine_doses,zone_level,"
        "distancing_order\n"
    )
    good = "26734,5,10,1,0,100,yellow,false\n"
    csv = {"Content-Type": "text/csv"}

    def body(text: str | bytes) -> dict[str, Any]:
        return {"content": text, "extra_headers": csv}

    cases: list[tuple[Any, ...]] = [
        ("POST", base, ops, 422, "UTF-8", body(b"site_code\n\xff\xfe\n")),
        ("POST", base, ops, 422, "", body(b"")),
        ("POST", base, ops, 422, "", body(head)),
        ("POST", base, ops, 422, "site_code", body("new_cases\n5\n")),
        ("POST", base, ops, 422, "line 2", body(head + "nope,5,10,1,0,100,yellow,false\n")),
        (
            "POST",
            base,
            ops,
            422,
            "line 3",
            body(head + good + "26737,5,10,1,-4,100,yellow,false\n"),
        ),
        ("POST", base, ops, 422, "line 2", body(head + "26734,many,10,1,0,100,yellow,false\n")),
        (
            "POST",
            "/api/command/reports/import?schema=nope",
            ops,
            (404, 422),
            "nope",
            body(head + good),
        ),
        (
            "POST",
            "/api/command/reports/import?schema=covid19&period=soon",
            ops,
            422,
            "period",
            body(head + good),
        ),
        ("POST", base, ops, 413, "larger than 5242880 bytes", body(b"x" * (5 * 1024 * 1024 + 1))),
        ("POST", base, ops, 422, "line 2", body(head + "26734,5,10,1,0,100,yel\x00low,false\n")),
    ]
    await run_cases(w, cases)


async def test_every_route_survives_huge_ids_and_nul_characters(world: World) -> None:
    """Bad inputs, on every route with a path parameter (from the route table): an id
    one past 64 bits, a negative id, a NUL character, and a 300-character value;
    each with a caller of the route's kind. Never a 500, always the JSON error shape,
    and no table changes."""
    w = world
    who = {"staff": w.tokens["admin"], "site": w.tokens["26734"], "any": w.tokens["admin"]}
    cases: list[tuple[Any, ...]] = []
    for route in ROUTES:
        if "{" not in route.path or route.access == "public":
            continue
        for bad in (str(HUGE), "-1", "a%00b", "9" * 300):
            url = re.sub(r"\{[^}]+\}", bad, route.path)
            kwargs: dict[str, Any] = {}
            if route.raw is not None:
                kwargs = {"content": route.raw, "extra_headers": {"Content-Type": "text/csv"}}
            elif route.body is not None:
                kwargs = _json(_fill(route.body, w.ids))
            if (route.method, route.path) in NOTHING_TO_CLOSE and bad.lstrip("-").isdigit():
                r = await w.client.request(route.method, url, headers=w.tokens["admin"])
                assert r.status_code == 200 and r.json()["closed"] is False, r.text
                continue
            cases.append((route.method, url, who[route.access], (403, 404, 409, 422), "", kwargs))
    await run_cases(w, cases)


async def test_an_oversize_csv_import_is_refused_without_reading_it_all(world: World) -> None:
    """Bad input: a 100 MB CSV body sent in 1 MB chunks. The server stops reading once
    past its 5 MB limit (a staff token is enough to make it buffer the whole body
    otherwise) and answers 413 ``too_large``; nothing is stored."""
    w = world
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(100):
            sent += 1
            yield b"x" * (1024 * 1024)

    url = "/api/command/reports/import?schema=covid19&period=" + w.ids["period"]
    before = await snapshot(w)
    headers = {**w.tokens["admin"], "Content-Type": "text/csv"}
    r = await w.client.post(url, content=chunks(), headers=headers)
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large", r.text
    assert str(5 * 1024 * 1024) in r.json()["error"]["message"]
    assert sent <= 7, f"read {sent} MB of a body refused past 5 MB"
    assert changed(before, await snapshot(w)) == []
