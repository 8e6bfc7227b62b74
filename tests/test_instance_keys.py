"""The token key and the site key: separate, from files, checked, rotated (docs/security.md).

Bad inputs tried: a key of 31 characters, an empty key file, a file of comments
only, a missing key file, a key given both directly and as a file, a 6-character
``DIEMCAU_SECRET_KEY``; a token signed with the site key (someone who holds only
the digest key); a token signed with a retired key; a wrong site secret after a
rotation; a re-key that arrives after the site's credential was replaced.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from diemcau.accounts.service import (
    StaffPrincipal,
    create_staff,
    issue_session_token,
    rekey_site_digests,
    rotate_site,
)
from diemcau.api import create_app
from diemcau.config import Settings
from diemcau.directory import service
from diemcau.directory.records import UnitRecord
from diemcau.instance_keys import KeyConfigError, load_instance_keys, parse_keys, site_key_usage
from diemcau.runtime import Runtime
from diemcau.security import KeyRing, TokenError, key_id, verify_token
from diemcau.store import Database, migrate
from diemcau.store.models import Site
from tests.presence_support import RawSite, eventually

PASSWORD = "correct horse battery"
TREE = [
    UnitRecord(code="VN", name="Việt Nam", level="country"),
    UnitRecord(code="01", name="Thành phố Hà Nội", level="province", parent_code="VN"),
    UnitRecord(code="00004", name="Phường Ba Đình", level="commune", parent_code="01"),
    UnitRecord(code="00008", name="Phường Ngọc Hà", level="commune", parent_code="01"),
]


def _key() -> str:
    return secrets.token_hex(32)


def _file(tmp_path: Path, name: str, *keys: str) -> str:
    path = tmp_path / name
    path.write_text("# newest first\n" + "\n".join(keys) + "\n")
    path.chmod(0o600)
    return str(path)


@asynccontextmanager
async def _app(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    from diemcau.wiring import build_runtime

    runtime = await build_runtime(settings)
    transport = httpx.ASGITransport(app=create_app(runtime), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        await runtime.start()
        try:
            yield client, runtime
        finally:
            await runtime.close()


async def _seed(url: str) -> None:
    await migrate(url)
    db = Database(url)
    try:
        await service.load_units(db, TREE, dataset="test")
        await create_staff(db, "chair", PASSWORD, "chair")
    finally:
        await db.dispose()


async def _login(client: httpx.AsyncClient) -> str:
    r = await client.post("/api/auth/login", json={"username": "chair", "password": PASSWORD})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


async def _me(client: httpx.AsyncClient, token: str) -> int:
    r = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    return r.status_code


async def _digest(db: Database, code: str) -> tuple[str | None, str | None]:
    async with db.session() as s:
        row = (
            await s.execute(select(Site.secret_digest, Site.secret_key_id).where(Site.code == code))
        ).one()
    return row.secret_digest, row.secret_key_id


def _hmac(key: str | bytes, secret: str) -> str:
    raw = key.encode() if isinstance(key, str) else key
    return hmac.new(raw, secret.encode(), hashlib.sha256).hexdigest()


async def test_by_default_two_stored_keys_and_the_site_key_is_the_historical_one(
    db: Database, sqlite_url: str
) -> None:
    keys = await load_instance_keys(Settings(database_url=sqlite_url), db)
    assert keys.token.current != keys.site.current
    assert keys.site.current == await db.secret_key()  # digests made before the split work
    other = Database(sqlite_url)  # a second process on the same store
    try:
        again = await load_instance_keys(Settings(database_url=sqlite_url), other)
    finally:
        await other.dispose()
    assert (again.token.current, again.site.current) == (keys.token.current, keys.site.current)
    assert "KeyRing(ids=" in repr(keys.token) and keys.token.current.decode() not in repr(keys)


def test_bad_keys_are_refused_in_one_clear_line(tmp_path: Path) -> None:
    short = "x" * 31
    cases = {
        "a 31-character key": (short, "line 1: a key needs at least 32 characters (it has 31)"),
        "comments only": ("# nothing here\n\n", "holds no key"),
        "an empty file": ("", "holds no key"),
    }
    for what, (text, says) in cases.items():
        with pytest.raises(KeyConfigError) as err:
            parse_keys(text, "DIEMCAU_TOKEN_KEY_FILE k")
        assert says in err.value.message and "\n" not in err.value.message, what
    assert parse_keys(f"# old ones below\n{'a' * 32}\n\n{'b' * 40}\n", "f") == [
        b"a" * 32,
        b"b" * 40,
    ]


async def test_configured_keys_are_checked_before_anything_runs(
    db: Database, sqlite_url: str, tmp_path: Path
) -> None:
    bad = {
        "missing file": (
            Settings(database_url=sqlite_url, token_key_file=str(tmp_path / "none")),
            "DIEMCAU_TOKEN_KEY_FILE: cannot read",
        ),
        "key and file": (
            Settings(database_url=sqlite_url, site_key=_key(), site_key_file=str(tmp_path)),
            "set DIEMCAU_SITE_KEY or DIEMCAU_SITE_KEY_FILE, not both",
        ),
        "short secret key": (
            Settings(database_url=sqlite_url, secret_key="secret"),
            "DIEMCAU_SECRET_KEY: a key needs at least 32 characters (it has 6)",
        ),
        "short site key": (
            Settings(database_url=sqlite_url, site_key="short"),
            "DIEMCAU_SITE_KEY line 1: a key needs at least 32 characters",
        ),
    }
    for what, (settings, says) in bad.items():
        with pytest.raises(KeyConfigError) as err:
            await load_instance_keys(settings, db)
        assert says in err.value.message, what
    # A legacy DIEMCAU_SECRET_KEY still gives two different keys, both outside the store.
    legacy = _key()
    keys = await load_instance_keys(Settings(database_url=sqlite_url, secret_key=legacy), db)
    assert keys.site.current == legacy.encode() and keys.token.current != legacy.encode()


async def test_the_token_key_rotates_and_the_site_key_cannot_sign(
    sqlite_url: str, tmp_path: Path
) -> None:
    await _seed(sqlite_url)
    old, new = _key(), _key()
    first = Settings(database_url=sqlite_url, port=0, token_key_file=_file(tmp_path, "t1", old))
    async with _app(first) as (client, runtime):
        token = await _login(client)
        assert await _me(client, token) == 200
        # Whoever holds the site key (or the database's keys) cannot make a staff token.
        forged = issue_session_token(
            runtime.keys.site, StaffPrincipal(1, "chair", "chair", None), 3600
        )
        assert await _me(client, forged) == 401
        forged = issue_session_token(
            await runtime.db.secret_key(), StaffPrincipal(1, "chair", "chair", None), 3600
        )
        assert await _me(client, forged) == 401
    rotated = Settings(
        database_url=sqlite_url, port=0, token_key_file=_file(tmp_path, "t2", new, old)
    )
    async with _app(rotated) as (client, _runtime):
        assert await _me(client, token) == 200  # the old key still verifies
        fresh = await _login(client)
        verify_token(KeyRing([new.encode()]), fresh)  # signed with the new key
        with pytest.raises(TokenError):
            verify_token(KeyRing([old.encode()]), fresh)
    retired = Settings(database_url=sqlite_url, port=0, token_key_file=_file(tmp_path, "t3", new))
    async with _app(retired) as (client, _runtime):
        assert await _me(client, token) == 401  # retired key: refused
        assert await _me(client, fresh) == 200


async def test_a_new_site_key_rekeys_each_site_at_its_next_login(
    sqlite_url: str, tmp_path: Path
) -> None:
    await _seed(sqlite_url)
    async with _app(Settings(database_url=sqlite_url, port=0)) as (_client, runtime):
        legacy = runtime.keys.site.current
        codes = {c: await rotate_site(runtime.db, runtime.keys.site, c) for c in ("00004", "00008")}
    site_key = _key()
    settings = Settings(
        database_url=sqlite_url, port=0, site_key_file=_file(tmp_path, "s1", site_key)
    )
    async with _app(settings) as (client, runtime):
        ring = runtime.keys.site
        assert ring.ids == (key_id(site_key.encode()), key_id(legacy))  # old one verifies only
        usage = await site_key_usage(runtime.db, ring.ids, key_id(legacy))
        assert usage == {ring.ids[0]: 0, ring.ids[1]: 2}
        # Over HTTP: the login re-makes the digest with the new key at once.
        r = await client.post("/api/auth/site-login", json={"join_code": codes["00004"]})
        assert r.status_code == 200, r.text
        secret = codes["00004"].rsplit(":", 1)[1]
        assert await _digest(runtime.db, "00004") == (_hmac(site_key, secret), ring.ids[0])
        wrong = "00004:" + "A" * 27
        r = await client.post("/api/auth/site-login", json={"join_code": wrong})
        assert r.status_code == 401
        # Over the site socket: re-made in memory at the hello, stored with the next poll.
        site = RawSite(runtime.presence)
        assert (await site.connect(join_code=codes["00008"]))["type"] == "welcome"
        await runtime.presence.credentials.store_rekeyed()
        secret = codes["00008"].rsplit(":", 1)[1]
        assert await _digest(runtime.db, "00008") == (_hmac(site_key, secret), ring.ids[0])
        await site.close()
        # A late re-key never brings back a replaced secret.
        replaced = await rotate_site(runtime.db, ring, "00008")
        info = await runtime.sites.find("00008", reload_missing=True)
        assert info is not None
        late = [(info.id, _hmac(site_key, secret), "a late digest")]
        assert await rekey_site_digests(runtime.db, ring, late) == 0
        assert (await _digest(runtime.db, "00008"))[0] == _hmac(
            site_key, replaced.rsplit(":", 1)[1]
        )
        codes["00008"] = replaced
    # Every digest is on the new key: the historical key leaves the ring by itself.
    async with _app(settings) as (client, runtime):
        assert runtime.keys.site.ids == (key_id(site_key.encode()),)
        for code in codes.values():
            r = await client.post("/api/auth/site-login", json={"join_code": code})
            assert r.status_code == 200, r.text
        site = RawSite(runtime.presence)
        assert (await site.connect(join_code=codes["00004"]))["type"] == "welcome"
        await eventually(lambda: runtime.presence.is_online(site.welcome["site_id"]))
        await site.close()
