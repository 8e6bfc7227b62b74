"""Login abuse (docs/security.md, "Login abuse"): parallel guessing, lock-out of others,
password spraying, a flood of argon2 checks, huge request bodies; logout and password
change end sessions.

Bad inputs tried, by name: 20 wrong passwords for one account sent at once from one
address, then from 20 addresses; the right password from an unfamiliar client while the
account waits; 40 usernames sprayed from one address; a device cookie issued for another
account; 12 logins at once against a gate of one slot; a 2 MiB JSON login body with and
without a Content-Length; a 6 MiB CSV import; a wrong current password, a 5-character
new password and the same password again on the change endpoint.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from diemcau import security
from diemcau.accounts import passwords, service, staff, staff_sessions
from diemcau.accounts.passwords import PasswordGate
from diemcau.accounts.service import create_staff
from diemcau.api import create_app
from diemcau.api.app import MAX_REQUEST_BYTES
from diemcau.audit import AuditQuery, query_audit
from diemcau.config import Settings
from diemcau.directory import service as directory
from diemcau.directory.records import UnitRecord
from diemcau.errors import Unavailable
from diemcau.ratelimit import LoginThrottle, TooManyAttempts
from diemcau.runtime import Runtime
from diemcau.wiring import build_runtime

PASSWORD = "correct horse battery"
TREE = [
    UnitRecord(code="VN", name="Việt Nam", level="country"),
    UnitRecord(code="01", name="Thành phố Hà Nội", level="province", parent_code="VN"),
    UnitRecord(code="00004", name="Phường Ba Đình", level="commune", parent_code="01"),
]


@dataclass
class World:
    runtime: Runtime
    app: Any
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def client(self, address: str) -> httpx.AsyncClient:
        """A client calling from `address` (its own cookie jar: its own browser)."""
        transport = httpx.ASGITransport(
            app=self.app, raise_app_exceptions=False, client=(address, 40000)
        )
        c = httpx.AsyncClient(transport=transport, base_url="http://test")
        self.clients.append(c)
        return c


@asynccontextmanager
async def world(sqlite_url: str) -> AsyncIterator[World]:
    runtime = await build_runtime(Settings(database_url=sqlite_url, port=0))
    await directory.load_units(runtime.db, TREE, dataset="test")
    for name, role in (("chair", "chair"), ("ops", "operator"), ("admin", "admin")):
        await create_staff(runtime.db, name, PASSWORD, role)
    w = World(runtime, create_app(runtime))
    # Backoff starting at a minute: a slow machine's argon2 checks never let one more in.
    w.app.state.login_throttle = LoginThrottle(base_s=60.0)
    await runtime.start()
    try:
        yield w
    finally:
        for c in w.clients:
            await c.aclose()
        await runtime.close()


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every argon2 verification the server runs, by the password it checked."""
    seen: list[str] = []
    real = security.verify_password

    def counting(stored: str, password: str) -> bool:
        seen.append(password)
        return real(stored, password)

    monkeypatch.setattr(passwords, "verify_password", counting)
    yield seen


async def _login(c: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await c.post("/api/auth/login", json={"username": username, "password": password})


async def test_parallel_guesses_get_no_more_checks_than_allowed(
    sqlite_url: str, checks: list[str]
) -> None:
    async with world(sqlite_url) as w:
        throttle: LoginThrottle = w.app.state.login_throttle
        attacker = w.client("203.0.113.66")
        guesses = [f"guess-{i}" for i in range(20)]
        answers = await asyncio.gather(*(_login(attacker, "chair", g) for g in guesses))
        statuses = sorted(r.status_code for r in answers)
        assert statuses == [401] * throttle.free + [429] * (20 - throttle.free)
        assert len(checks) == throttle.free  # 20 sent at once: only `free` reached argon2
        refused = next(r for r in answers if r.status_code == 429)
        assert refused.json()["error"]["code"] == "rate_limited"
        assert int(refused.headers["Retry-After"]) >= 1
        # From 20 other addresses at once: the account's lane is shared, nothing more.
        spread = [w.client(f"198.51.100.{i}") for i in range(1, 21)]
        answers = await asyncio.gather(*(_login(c, "chair", "again") for c in spread))
        assert {r.status_code for r in answers} == {429}
        assert len(checks) == throttle.free
        # The right password from an unfamiliar client does not get through either,
        # and is not even checked (the wait cannot be used to test guesses).
        r = await _login(w.client("192.0.2.10"), "chair", PASSWORD)
        assert r.status_code == 429 and len(checks) == throttle.free
        # Another account from the attacker's own address is not affected.
        assert (await _login(attacker, "ops", PASSWORD)).status_code == 200


async def test_a_known_client_is_never_locked_out_by_someone_else(
    sqlite_url: str, checks: list[str]
) -> None:
    async with world(sqlite_url) as w:
        office = w.client("100.64.0.5")  # the chair's own PC, behind the same NAT later
        assert (await _login(office, "chair", PASSWORD)).status_code == 200
        cookie = next(c for c in office.cookies.jar if c.name.startswith("diemcau_device_"))
        assert cookie.path == "/api/auth" and cookie.has_nonstandard_attr("HttpOnly")
        # Somebody guesses the chair's password from everywhere, the office NAT included.
        for address in ("100.64.0.5", "203.0.113.9", "198.51.100.77"):
            guesser = w.client(address)
            for i in range(8):
                await _login(guesser, "chair", f"wrong-{address}-{i}")
        assert (await _login(w.client("100.64.0.6"), "chair", PASSWORD)).status_code == 429
        # The chair's known PC still logs in at once, with one check.
        before = len(checks)
        r = await _login(office, "chair", PASSWORD)
        assert r.status_code == 200, r.text
        assert len(checks) == before + 1
        # A device cookie of another account proves nothing for this one.
        ops_pc = w.client("100.64.0.7")
        assert (await _login(ops_pc, "ops", PASSWORD)).status_code == 200
        ops_cookie = next(c for c in ops_pc.cookies.jar if c.name.startswith("diemcau_device_"))
        thief = w.client("203.0.113.99")
        thief.cookies.set(cookie.name, ops_cookie.value or "", path="/api/auth")
        assert (await _login(thief, "chair", PASSWORD)).status_code == 429


async def test_spraying_one_password_over_many_accounts_from_one_address(
    sqlite_url: str, checks: list[str]
) -> None:
    async with world(sqlite_url) as w:
        throttle: LoginThrottle = w.app.state.login_throttle
        sprayer = w.client("203.0.113.200")
        statuses = [(await _login(sprayer, f"user{i}", "Password1")).status_code for i in range(40)]
        assert statuses.count(401) == throttle.address_free
        assert statuses[throttle.address_free :] == [429] * (40 - throttle.address_free)
        assert len(checks) == throttle.address_free


def test_the_backoff_doubles_is_forgiven_with_time_and_a_success_empties_the_account_lane() -> None:
    now = [1000.0]
    throttle = LoginThrottle(free=2, base_s=1.0, max_delay_s=8.0, forgive_s=600.0,
                             clock=lambda: now[0])  # fmt: skip
    for _ in range(2):
        throttle.begin("a", "ip").failed()
    waits = []
    for _ in range(6):
        with pytest.raises(TooManyAttempts) as err:
            throttle.begin("a", "ip")
        waits.append(err.value.retry_after_s)
        now[0] += err.value.retry_after_s
        throttle.begin("a", "ip").failed()
    assert waits == [1, 2, 4, 8, 8, 8]  # doubling, capped
    now[0] += 600 * 6  # six failures forgiven after an hour of quiet
    throttle.begin("a", "ip").failed()
    with pytest.raises(TooManyAttempts):
        throttle.begin("a", "ip")
    now[0] += 10
    throttle.begin("a", "ip").succeeded()
    throttle.begin("a", "ip").failed()  # the account's lane starts over
    # A busy server's refusal does not count; an attempt cut half-way does.
    ticket = throttle.begin("b", "ip2")
    ticket.cancelled()
    ticket.failed()  # told twice: the first answer stands
    throttle.begin("b", "ip2").failed()
    throttle.begin("b", "ip2").failed()
    with pytest.raises(TooManyAttempts):
        throttle.begin("b", "ip2")


async def test_password_checks_are_bounded_and_a_full_queue_answers_503(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = PasswordGate(concurrency=1, max_waiting=2)
    monkeypatch.setattr(staff, "PASSWORDS", gate)
    monkeypatch.setattr(staff_sessions, "PASSWORDS", gate)
    async with world(sqlite_url) as w:
        answers = await asyncio.gather(
            *(_login(w.client(f"198.51.100.{i}"), f"nobody{i}", "x") for i in range(12))
        )
        statuses = sorted(r.status_code for r in answers)
        assert gate.peak == 1
        assert statuses.count(503) >= 6 and set(statuses) == {401, 503}
        busy = next(r for r in answers if r.status_code == 503)
        assert busy.json()["error"]["code"] == "busy" and int(busy.headers["Retry-After"]) >= 1
        # A refusal for load is not a failed attempt: the same client logs in right after.
        ok = await _login(w.client("198.51.100.0"), "chair", PASSWORD)
        assert ok.status_code == 200


async def test_the_gate_runs_at_most_its_slots_and_queues_in_order() -> None:
    gate = PasswordGate(concurrency=2, max_waiting=3)
    running, peak, lock = [0], [0], threading.Lock()

    def slow(i: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return i

    results = await asyncio.gather(*(gate.run(slow, i) for i in range(8)), return_exceptions=True)
    done = [r for r in results if isinstance(r, int)]
    refused = [r for r in results if isinstance(r, Unavailable)]
    assert peak[0] == 2 and gate.peak == 2
    assert len(done) == 5 and len(refused) == 3 and gate.refused == 3
    assert gate.running == 0 and gate.waiting == 0


async def test_request_bodies_are_cut_at_the_limit_while_streaming(sqlite_url: str) -> None:
    async with world(sqlite_url) as w:
        c = w.client("127.0.0.1")
        padding = "x" * (2 * 1024 * 1024)
        r = await c.post("/api/auth/login", json={"username": "chair", "password": padding})
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "too_large"
        assert str(MAX_REQUEST_BYTES) in r.json()["error"]["message"]
        sent = 0

        async def chunks() -> AsyncIterator[bytes]:
            nonlocal sent
            yield b'{"username": "chair", "password": "'
            for _ in range(64):  # 4 MiB, without a Content-Length
                sent += 64 * 1024
                yield b"y" * (64 * 1024)
            yield b'"}'

        r = await c.post(
            "/api/auth/login", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
        assert sent <= MAX_REQUEST_BYTES + 3 * 64 * 1024  # stopped reading at the limit
        # The CSV import keeps its own, larger limit (5 MB): 2 MiB is not "too large".
        token = (await _login(c, "chair", PASSWORD)).json()["token"]
        chair = {"Authorization": f"Bearer {token}", "Content-Type": "text/csv"}
        csv = b"site_code,new_cases\n" + b"00004,1\n" * (2 * 1024 * 1024 // 8)
        r = await c.post("/api/command/reports/import?schema=covid19", content=csv, headers=chair)
        assert r.status_code != 413 and r.json()["error"]["code"] != "too_large", r.text
        big = b"site_code,new_cases\n" + b"00004,1\n" * (6 * 1024 * 1024 // 8)
        r = await c.post("/api/command/reports/import?schema=covid19", content=big, headers=chair)
        assert r.status_code == 413 and str(5 * 1024 * 1024) in r.text


async def test_logout_and_password_change_end_sessions(sqlite_url: str) -> None:
    async with world(sqlite_url) as w:
        pc, phone = w.client("127.0.0.1"), w.client("127.0.0.2")
        first = {"Authorization": f"Bearer {(await _login(pc, 'chair', PASSWORD)).json()['token']}"}
        second = {
            "Authorization": f"Bearer {(await _login(phone, 'chair', PASSWORD)).json()['token']}"
        }
        assert (await pc.post("/api/auth/logout", headers=first)).status_code == 204
        for headers in (first, second):  # every token of the account, on every device
            r = await pc.get("/api/auth/me", headers=headers)
            assert r.status_code == 401 and "log in again" in r.json()["error"]["message"]
        # Sites have no staff session to end.
        join = await service.rotate_site(w.runtime.db, w.runtime.keys.site, "00004")
        site = (await pc.post("/api/auth/site-login", json={"join_code": join})).json()["token"]
        r = await pc.post("/api/auth/logout", headers={"Authorization": f"Bearer {site}"})
        assert r.status_code == 403

        token = (await _login(pc, "chair", PASSWORD)).json()["token"]
        me = {"Authorization": f"Bearer {token}"}
        other = {
            "Authorization": f"Bearer {(await _login(phone, 'chair', PASSWORD)).json()['token']}"
        }
        bad = {
            "wrong current password": ({"old_password": "nope", "new_password": "x" * 12}, 403),
            "5-character new password": ({"old_password": PASSWORD, "new_password": "short"}, 422),
            "the same password again": ({"old_password": PASSWORD, "new_password": PASSWORD}, 422),
        }
        for what, (body, status) in bad.items():
            r = await pc.post("/api/auth/password", json=body, headers=me)
            assert r.status_code == status, (what, r.text)
        assert (await pc.get("/api/auth/me", headers=me)).status_code == 200  # nothing changed
        r = await pc.post(
            "/api/auth/password",
            json={"old_password": PASSWORD, "new_password": "a new long secret"},
            headers=me,
        )
        assert r.status_code == 200, r.text
        fresh = {"Authorization": f"Bearer {r.json()['token']}"}
        assert (await pc.get("/api/auth/me", headers=fresh)).status_code == 200
        for headers in (me, other):
            assert (await pc.get("/api/auth/me", headers=headers)).status_code == 401
        assert (await _login(pc, "chair", PASSWORD)).status_code == 401
        assert (await _login(pc, "chair", "a new long secret")).status_code == 200
        _, entries = await query_audit(w.runtime.db, AuditQuery(action="staff.password_change"))
        assert [e.target for e in entries] == ["chair"]
        # An administrator's reset ends the account's sessions too.
        admin = {"Authorization": f"Bearer {(await _login(pc, 'admin', PASSWORD)).json()['token']}"}
        r = await pc.post(
            "/api/admin/staff/chair/password", json={"password": "reset by admin"}, headers=admin
        )
        assert r.status_code == 200
        assert (await pc.get("/api/auth/me", headers=fresh)).status_code == 401
