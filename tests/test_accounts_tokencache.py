"""The account-state cache behind `check_session_token`: fewer queries, no stale refusal.

Changes made through the accounts service (rotate, revoke, disable, enable) and
the provisioner apply at once; a change behind its back (raw SQL, another
process) applies once the TTL has passed, measured on a fake clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, update

from diemcau.accounts.service import (
    authenticate_site,
    authenticate_staff,
    check_session_token,
    create_staff,
    disable_staff,
    enable_staff,
    issue_session_token,
    revoke_site,
    rotate_site,
)
from diemcau.accounts.tokencache import TTL_S, AccountStateCache, state_cache
from diemcau.security import TokenError
from diemcau.store import Database, Site, StaffUser
from tests.test_accounts_service import KEY, make_tree


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(any_db: Database) -> Iterator[Clock]:
    fake = Clock()
    cache = state_cache(any_db.url)
    real = cache.clock
    cache.clock = fake
    yield fake
    cache.clock = real


class Queries:
    """Counts the SQL statements a database runs."""

    def __init__(self, db: Database) -> None:
        self.count = 0
        event.listen(db.engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args: Any) -> None:
        self.count += 1


def test_entries_expire_and_a_late_store_after_a_forget_is_ignored() -> None:
    fake = Clock()
    cache = AccountStateCache(ttl_s=5.0, clock=fake)
    cache.put("site", 1, (3, False), cache.generation)
    assert cache.get("site", 1) == (3, False)
    fake.now += 4.9
    assert cache.get("site", 1) == (3, False)
    fake.now += 0.2
    assert cache.get("site", 1) is None
    # A read that began before a forget must not store what it read.
    started = cache.generation
    cache.forget("site")
    cache.put("site", 1, (3, False), started)
    assert cache.get("site", 1) is None
    cache.put("staff", 2, (False, "chair", None), cache.generation)
    cache.forget("site")
    assert cache.get("staff", 2) == (False, "chair", None)  # forgetting sites keeps staff


async def test_a_cached_site_token_skips_the_store_until_the_ttl(
    any_db: Database, clock: Clock
) -> None:
    await make_tree(any_db)
    code = await rotate_site(any_db, KEY, "00001")
    site = await authenticate_site(any_db, KEY, code)
    assert site is not None
    token = issue_session_token(KEY, site, 600)
    queries = Queries(any_db)
    assert await check_session_token(any_db, KEY, token) == site
    first = queries.count
    assert first >= 1
    for _ in range(5):
        assert await check_session_token(any_db, KEY, token) == site
    assert queries.count == first  # answered from the cache

    # Revoked behind the service's back (another process): refused after the TTL.
    async with any_db.session() as s:
        await s.execute(update(Site).where(Site.id == site.site_id).values(revoked=True))
    clock.now += TTL_S - 0.5
    assert await check_session_token(any_db, KEY, token) == site
    clock.now += 1.0
    with pytest.raises(TokenError, match="revoked"):
        await check_session_token(any_db, KEY, token)


async def test_service_changes_apply_at_once(any_db: Database, clock: Clock) -> None:
    await make_tree(any_db)
    code = await rotate_site(any_db, KEY, "00001")
    site = await authenticate_site(any_db, KEY, code)
    assert site is not None
    site_token = issue_session_token(KEY, site, 600)
    assert await check_session_token(any_db, KEY, site_token) == site
    await revoke_site(any_db, "00001")  # no clock advance: the cache must not answer
    with pytest.raises(TokenError):
        await check_session_token(any_db, KEY, site_token)

    new_code = await rotate_site(any_db, KEY, "00001")
    again = await authenticate_site(any_db, KEY, new_code)
    assert again is not None
    new_token = issue_session_token(KEY, again, 600)
    assert await check_session_token(any_db, KEY, new_token) == again
    await rotate_site(any_db, KEY, "00001")
    with pytest.raises(TokenError):
        await check_session_token(any_db, KEY, new_token)

    staff = await create_staff(any_db, "chair1", "long enough", "chair")
    staff_token = issue_session_token(KEY, staff, 600)
    assert await check_session_token(any_db, KEY, staff_token) == staff
    # A second Database object on the same store (as a CLI command in-process) shares it.
    other = Database(any_db.url)
    try:
        await disable_staff(other, "chair1")
    finally:
        await other.dispose()
    with pytest.raises(TokenError, match="disabled"):
        await check_session_token(any_db, KEY, staff_token)
    await enable_staff(any_db, "chair1")
    # Disabling ended its sessions (the token version moved on): enabled again, the
    # account logs in again; its old token stays refused (docs/security.md).
    with pytest.raises(TokenError):
        await check_session_token(any_db, KEY, staff_token)
    relogged = await authenticate_staff(any_db, "chair1", "long enough")
    assert relogged is not None and relogged.token_version > staff.token_version
    staff, staff_token = relogged, issue_session_token(KEY, relogged, 600)
    assert await check_session_token(any_db, KEY, staff_token) == staff

    # A role changed by hand is seen after the TTL.
    async with any_db.session() as s:
        await s.execute(
            update(StaffUser).where(StaffUser.id == staff.user_id).values(role="operator")
        )
    assert await check_session_token(any_db, KEY, staff_token) == staff
    clock.now += TTL_S + 0.1
    with pytest.raises(TokenError):
        await check_session_token(any_db, KEY, staff_token)
