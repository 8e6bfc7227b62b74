"""Every route of the OpenAPI spec fuzzed as every kind of caller (docs/security.md).

Schemathesis draws requests from the app's own ``/openapi.json`` — valid ones
(positive mode) and ones that break the schema (negative mode: wrong types,
missing and unknown fields, out-of-range numbers, odd strings) — and each drawn
request is sent, over real HTTP to the test world of `tests/api_world.py`, as
each caller in turn: no token, the site 26734, the province officer of 79, an
operator, a chair and an admin (least privileged first, so a destructive admin
request comes last). A third of the draws aim at Hà Nội's resources: the path,
query and (sometimes) body of the route's row in `tests/route_table.py` replace
the generated ones, with the rest still fuzzed.

Every answer must satisfy, whoever asked:

* never a status ≥ 500, never a traceback in the body;
* never a 2xx the route table says the caller may not have: no token on a
  non-public route, a site on a staff route, staff on a site route, a staff
  role the route's role gate leaves out, the officer or the site reaching
  Hà Nội's resource on a route that refuses it, any Hà Nội marker in a
  scoped answer to them; and never a 2xx from a route whose permission is a
  secret the fuzzer cannot know (login, signed links, watch tickets).

CI runs `EXAMPLES` draws per mode per route on SQLite (each sent 6 times) and
one per mode on PostgreSQL; ``DIEMCAU_FUZZ_SCALE`` multiplies both.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest
import requests
import schemathesis
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.core.result import Ok

from tests.conftest import PG_URL, _drop_database, _pg_connect_kwargs
from tests.fuzz_support import Live, fuzz_settings, live_world
from tests.route_table import HN_MARKERS, ROUTES, Route, _fill, unstarted_app

# Draws per generation mode per route: 2 modes x 6 callers x EXAMPLES requests a route.
EXAMPLES = 4
PG_EXAMPLES = 1
SPEC = unstarted_app().openapi()
SCHEMA = schemathesis.openapi.from_dict(SPEC)
OPERATIONS = {
    f"{op.method.upper()} {op.path}": op
    for op in (r.ok() for r in SCHEMA.get_all_operations() if isinstance(r, Ok))
}
TABLE = {(r.method, r.path): r for r in ROUTES}

# Routes that end the caller's own sessions (a logout; a password change, whose drawn
# old password is never right, but whose right one would): fuzzed last, so every other
# route is fuzzed with live tokens. What they do is pinned in tests/test_login_abuse.py.
SESSION_ENDING = {"POST /api/auth/logout", "POST /api/auth/password"}


def fuzz_order() -> list[str]:
    """Every operation's label, those ending the caller's sessions last."""
    return sorted(OPERATIONS, key=lambda label: (label in SESSION_ENDING, label))


# Callers, least privileged first: (label, token key in World.tokens, staff role).
CALLERS: tuple[tuple[str, str | None, str | None], ...] = (
    ("no token", None, None),
    ("site 26734", "26734", None),
    ("officer of 79", "hcm", "province_officer"),
    ("operator", "ops", "operator"),
    ("chair", "chair", "chair"),
    ("admin", "admin", "admin"),
)

# Public routes whose permission is a secret in the request (a password, a join
# code, a signed link or ticket): a fuzzer that cannot know it must never succeed.
SECRET_GATED = {
    ("POST", "/api/auth/login"),
    ("POST", "/api/auth/site-login"),
    ("GET", "/api/recordings/{file_id}/watch"),
    ("GET", "/api/command/files/{file_id}"),
}

# The world's own accounts and the site whose token the fuzzer uses: a fuzzed admin
# request naming them (reset a password, disable, rotate) would lock the fuzzer out.
KEEP = {"admin": "hn", "chair": "hn", "ops": "hn", "hcm": "hn", "26734": "26737"}


def hn_request(route: Route, ids: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """The path parameters and query of the route's Hà Nội request in the table."""
    target = urlsplit(route.target(ids))
    names = route.path.split("/")
    values = target.path.split("/")
    path = {
        n[1:-1]: unquote(v)
        for n, v in zip(names, values, strict=False)
        if n.startswith("{") and n.endswith("}")
    }
    return path, dict(parse_qsl(target.query))


def violation(route: Route, caller: str, role: str | None, aimed: bool, r: Any) -> str | None:
    """What is wrong with answer `r` to `caller`, or None (module docstring)."""
    text = r.content.decode("utf-8", "replace")
    if r.status_code >= 500:
        return f"server error {r.status_code}: {text[:300]}"
    if "Traceback (most recent call last)" in text:
        return f"a traceback in the body: {text[:300]}"
    if not 200 <= r.status_code < 300:
        return None
    key = (route.method, route.path)
    if key in SECRET_GATED:
        return f"{r.status_code} without the secret that grants it"
    if route.access == "public":
        return None
    if caller == "no token":
        return f"{r.status_code} without a token"
    if role is None:  # the site
        if route.access == "staff":
            return "a site token reached a staff route"
        if aimed and route.site == "refused":
            return "the site reached another site's resource"
        reach = route.site
    else:
        if route.access == "site":
            return "a staff token acted as a site"
        if role not in route.admitted():
            return f"role {role} passed a gate for {sorted(route.admitted())}"
        if role != "province_officer":
            return None
        if aimed and route.officer == "refused":
            return "the officer of 79 reached Hà Nội's resource"
        reach = route.officer
    if reach in ("scoped", "refused"):
        leaked = [m for m in HN_MARKERS if m in text]
        if leaked:
            return f"leaks Hà Nội data {leaked}: {text[:300]}"
    return None


def _keep_world(path: dict[str, Any]) -> None:
    for name, value in path.items():
        if isinstance(value, str) and value in KEEP:
            path[name] = KEEP[value]


def fuzz_operation(live: Live, session: requests.Session, label: str, n: int) -> int:
    """Fuzz one operation with `n` draws per mode (scaled by `examples`); returns the
    requests sent."""
    op = OPERATIONS[label]
    route = TABLE.get((op.method.upper(), op.path))
    assert route is not None, f"{label} is in the spec but not in tests/route_table.py"
    ids = live.world.ids
    hn_path, hn_query = hn_request(route, ids)
    sent = 0

    def one(case: Any, aim: str) -> None:
        nonlocal sent
        aimed = aim != "generated"
        if aimed:
            case.path_parameters.update(hn_path)
        _keep_world(case.path_parameters)
        kwargs = case.as_transport_kwargs(base_url=live.base_url)
        if aimed:
            kwargs["params"] = {**(kwargs.get("params") or {}), **hn_query}
        if aim == "hn+body" and route.body is not None:
            kwargs.pop("data", None)
            kwargs["json"] = _fill(route.body, ids)
            kwargs["headers"]["Content-Type"] = "application/json"
        # "aimed" means the whole Hà Nội request of the table is in place.
        aimed = aimed and (route.body is None or aim == "hn+body")
        for caller, token, role in CALLERS:
            headers = dict(kwargs["headers"])
            headers.pop("Authorization", None)
            if token is not None:
                headers.update(live.world.tokens[token])
            what = f"{label} as {caller} ({aim})"
            try:
                r = session.request(**{**kwargs, "headers": headers}, timeout=60)
            except requests.RequestException as exc:
                raise AssertionError(
                    f"{what}: no answer ({exc})\nrequest: {kwargs['method']} {kwargs['url']} "
                    f"params={kwargs.get('params')!r:.300} "
                    f"body={kwargs.get('json', kwargs.get('data'))!r:.500}"
                ) from exc
            sent += 1
            problem = violation(route, caller, role, aimed, r)
            assert problem is None, (
                f"{what}: {problem}\nrequest: {kwargs['method']} {r.request.url}\n"
                f"body: {r.request.body!r:.500}"
            )

    aims = st.sampled_from(["generated", "generated", "hn", "hn+body"])
    for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):

        @fuzz_settings(n)
        @given(case=op.as_strategy(generation_mode=mode), aim=aims)
        def run(case: Any, aim: str) -> None:
            one(case, aim)

        try:
            run()
        except Unsatisfiable:
            # No request breaks this operation's schema (e.g. a GET without parameters).
            assert mode == schemathesis.GenerationMode.NEGATIVE, label
    return sent


def _session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False  # loopback only: never a proxy from the environment
    return s


@pytest.fixture(scope="module")
def live_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    db = tmp_path_factory.mktemp("fuzz-api") / "diemcau.db"
    with live_world(f"sqlite+aiosqlite:///{db}") as live:
        yield live


def test_the_spec_is_the_served_spec_and_every_operation_is_in_the_table(
    live_sqlite: Live,
) -> None:
    """The spec fuzzed is the one the server serves; every operation has a table row."""
    served = _session().get(live_sqlite.base_url + "/openapi.json", timeout=30).json()
    assert served["paths"] == SPEC["paths"]
    missing = [k for k, op in OPERATIONS.items() if (op.method.upper(), op.path) not in TABLE]
    assert not missing
    assert len(OPERATIONS) > 100


def test_a_value_the_database_refuses_keeps_the_connection(live_sqlite: Live) -> None:
    """Found by this fuzzer: a group id past 64 bits in a new meeting's invitation was
    answered 422, then the server logged a traceback and dropped the keep-alive
    connection, so the client's next request on it was reset. Bad inputs: that id,
    then an id past 64 bits in a path; each followed by a good request on the same
    connection."""
    h = live_sqlite.world.tokens["admin"]
    base = live_sqlite.base_url
    with _session() as s:
        bad: tuple[tuple[str, str, Any], ...] = (
            ("POST", "/api/meetings", {"title": "t", "invite": {"groups": [2**63]}}),
            ("GET", f"/api/meetings/{2**63}/floor", None),
        )
        for method, path, body in bad:
            r = s.request(method, base + path, json=body, headers=h, timeout=30)
            assert r.status_code in (404, 422) and r.json()["error"]["code"], r.text
            assert s.get(base + "/healthz", timeout=30).status_code == 200


@pytest.mark.parametrize("label", fuzz_order())
def test_fuzz_route_as_every_caller(live_sqlite: Live, label: str) -> None:
    """`EXAMPLES` positive and negative draws, each sent as the six callers (SQLite)."""
    with _session() as session:
        sent = fuzz_operation(live_sqlite, session, label, EXAMPLES)
    assert sent >= len(CALLERS)


@pytest.mark.pg
def test_fuzz_every_route_on_postgresql(tmp_path: Path) -> None:
    """A smaller pass on PostgreSQL (its limits differ: NUL characters, 64-bit integers)."""
    import asyncio
    import secrets

    import asyncpg
    from sqlalchemy.engine import make_url

    name = f"diemcau_t_{secrets.token_hex(6)}"

    async def create() -> None:
        admin = await asyncpg.connect(**_pg_connect_kwargs(PG_URL))  # type: ignore[arg-type]
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()

    asyncio.run(create())
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    failures: list[str] = []
    try:
        with live_world(url) as live, _session() as session:
            for label in fuzz_order():
                try:
                    fuzz_operation(live, session, label, PG_EXAMPLES)
                except AssertionError as exc:
                    failures.append(re.sub(r"\s+", " ", str(exc))[:600])
    finally:
        asyncio.run(_drop_database(name))
    assert not failures, "\n".join(failures)
