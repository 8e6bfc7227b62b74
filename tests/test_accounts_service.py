"""Staff accounts, site credentials and session tokens (diemcau.accounts.service)."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import func, select

from diemcau.accounts.actors import actor_of
from diemcau.accounts.service import (
    DuplicateUsername,
    InvalidDisplayName,
    InvalidUsername,
    ProvinceNotAllowed,
    ProvinceRequired,
    SitePrincipal,
    StaffPrincipal,
    UnknownProvince,
    UnknownRole,
    UnknownSite,
    UnknownStaff,
    WeakPassword,
    authenticate_site,
    authenticate_staff,
    check_session_token,
    create_staff,
    disable_staff,
    enable_staff,
    issue_session_token,
    list_staff,
    load_site_digests,
    principal_from_token,
    revoke_site,
    rotate_site,
    split_join_code,
    verify_join_code,
)
from diemcau.security import TokenError, sign_token
from diemcau.store import Database, Site, StaffUser, Unit
from diemcau.text import fold

KEY = b"k" * 32
EVIL_NAME = "=cmd|' /C calc'!A0"


async def make_tree(db: Database) -> dict[str, int]:
    """A small two-province tree with one site per unit; returns unit ids by code.

    VN → 01 Hà Nội → 00001, 00004 (communes)
       → 79 Hồ Chí Minh → 760 Quận 1 (district) → 26734 Bến Nghé, 26737 (a formula name)
    The chair site "TW" sits on the root, like the directory loader makes it.
    """
    spec = [
        ("VN", "Việt Nam", "country", "", None),
        ("01", "Thành phố Hà Nội", "province", "Thành phố", "VN"),
        ("00001", "Phường Ba Đình", "commune", "Phường", "01"),
        ("00004", "Phường Ngọc Hà", "commune", "Phường", "01"),
        ("79", "Thành phố Hồ Chí Minh", "province", "Thành phố", "VN"),
        ("760", "Quận 1", "district", "Quận", "79"),
        ("26734", "Phường Bến Nghé", "commune", "Phường", "760"),
        ("26737", EVIL_NAME, "commune", "Phường", "760"),
    ]
    ids: dict[str, int] = {}
    province_of: dict[str, int | None] = {}
    async with db.session() as s:
        for depth, (code, name, level, unit_type, parent) in enumerate(spec):
            parent_id = ids[parent] if parent else None
            province_id = None
            if level == "province":
                province_id = None  # set after flush (itself)
            elif parent is not None:
                province_id = province_of[parent]
            unit = Unit(
                code=code,
                name=name,
                search_key=fold(name),
                level=level,
                unit_type=unit_type,
                parent_id=parent_id,
                province_id=province_id,
                depth=depth,
                dataset="test",
            )
            s.add(unit)
            await s.flush()
            if level == "province":
                unit.province_id = unit.id
            ids[code] = unit.id
            province_of[code] = unit.province_id
            site_code = "TW" if level == "country" else code
            site_name = "Điểm cầu Trung ương" if level == "country" else name
            s.add(
                Site(
                    code=site_code,
                    name=site_name,
                    search_key=fold(site_name),
                    unit_id=unit.id,
                    province_id=unit.province_id,
                    kind="chair" if level == "country" else level,
                )
            )
    return ids


async def _staff_count(db: Database) -> int:
    async with db.session() as s:
        return int(await s.scalar(select(func.count()).select_from(StaffUser)) or 0)


async def test_staff_create_authenticate_disable(db: Database) -> None:
    ids = await make_tree(db)
    admin = await create_staff(db, "Admin", "correct horse", "admin", display_name="Quản trị")
    assert admin.username == "admin" and admin.province_id is None
    officer = await create_staff(db, "hcm.officer", "12345678", "province_officer", "79")
    assert officer.province_id == ids["79"]

    assert await authenticate_staff(db, "ADMIN", "correct horse") == admin
    assert await authenticate_staff(db, "admin", "wrong password") is None
    assert await authenticate_staff(db, "nobody", "correct horse") is None

    await disable_staff(db, "admin")
    assert await authenticate_staff(db, "admin", "correct horse") is None
    await enable_staff(db, "admin")
    # Enabled again under a new token version: tokens from before the disable stay dead.
    again = await authenticate_staff(db, "admin", "correct horse")
    assert again == dataclasses.replace(admin, token_version=admin.token_version + 1)
    with pytest.raises(UnknownStaff):
        await disable_staff(db, "nobody")

    listed = await list_staff(db)
    assert [(a.username, a.role, a.province_code) for a in listed] == [
        ("admin", "admin", None),
        ("hcm.officer", "province_officer", "79"),
    ]
    async with db.session() as s:
        stored = await s.scalar(
            select(StaffUser.password_hash).where(StaffUser.username == "admin")
        )
    assert stored is not None and stored.startswith("$argon2") and "correct horse" not in stored


@pytest.mark.parametrize(
    ("username", "password", "role", "province", "error"),
    [
        ("taken", "long enough", "chair", None, DuplicateUsername),
        ("TAKEN", "long enough", "chair", None, DuplicateUsername),  # case-insensitive
        ("new", "long enough", "emperor", None, UnknownRole),
        ("new", "short", "admin", None, WeakPassword),
        ("new", "long enough", "province_officer", None, ProvinceRequired),
        ("new", "long enough", "province_officer", "99", UnknownProvince),
        ("new", "long enough", "province_officer", "760", UnknownProvince),  # a district
        ("new", "long enough", "operator", "79", ProvinceNotAllowed),
        ("bad name!", "long enough", "admin", None, InvalidUsername),
        ("", "long enough", "admin", None, InvalidUsername),
        ("new", "long enough", "admin", "x" * 201, InvalidDisplayName),  # see below
    ],
)
async def test_staff_bad_input_is_refused_and_writes_nothing(
    db: Database,
    username: str,
    password: str,
    role: str,
    province: str | None,
    error: type[Exception],
) -> None:
    await make_tree(db)
    await create_staff(db, "taken", "long enough", "chair")
    with pytest.raises(error) as info:
        if error is InvalidDisplayName:  # the last case passes a too-long display name
            await create_staff(db, username, password, role, display_name=province or "")
        else:
            await create_staff(db, username, password, role, province)
    assert isinstance(info.value, ValueError)
    assert str(info.value)
    assert await _staff_count(db) == 1


async def test_site_credentials_on_both_stores(any_db: Database) -> None:
    ids = await make_tree(any_db)
    code = await rotate_site(any_db, KEY, "26734")
    assert split_join_code(code) is not None and code.startswith("26734:")

    principal = await authenticate_site(any_db, KEY, code)
    assert isinstance(principal, SitePrincipal)
    assert (principal.code, principal.province_id, principal.unit_id, principal.kind) == (
        "26734",
        ids["79"],
        ids["26734"],
        "commune",
    )
    assert principal.credential_version == 1

    secret = code.split(":", 1)[1]
    bad_inputs = {
        "wrong secret": "26734:" + "A" * len(secret),
        "secret of another site": "00001:" + secret,
        "unknown site": "99999:" + secret,
        "never provisioned site": "00004:" + secret,
        "no colon": "26734" + secret,
        "empty secret": "26734:",
        "empty": "",
    }
    for label, attempt in bad_inputs.items():
        assert await authenticate_site(any_db, KEY, attempt) is None, label
    assert await authenticate_site(any_db, b"another key", code) is None

    cache = await load_site_digests(any_db)
    assert set(cache) == {"26734"}
    assert verify_join_code(KEY, cache, code) == principal
    assert verify_join_code(KEY, cache, bad_inputs["wrong secret"]) is None

    # Rotation: the old code stops, the new one works with a higher version.
    new_code = await rotate_site(any_db, KEY, "26734")
    assert await authenticate_site(any_db, KEY, code) is None
    rotated = await authenticate_site(any_db, KEY, new_code)
    assert rotated is not None and rotated.credential_version == 2

    # Revocation: nothing works, the digest is gone, the version moved on.
    assert await revoke_site(any_db, "26734") == 3
    assert await authenticate_site(any_db, KEY, new_code) is None
    assert await load_site_digests(any_db) == {}
    async with any_db.session() as s:
        site = (await s.execute(select(Site).where(Site.code == "26734"))).scalar_one()
    assert site.revoked and site.secret_digest is None and site.credential_version == 3

    # Rotating a revoked site reinstates it with a fresh code.
    again = await rotate_site(any_db, KEY, "26734")
    assert (await authenticate_site(any_db, KEY, again)) is not None

    with pytest.raises(UnknownSite):
        await rotate_site(any_db, KEY, "nope")
    with pytest.raises(UnknownSite):
        await revoke_site(any_db, "nope")


async def test_tokens_round_trip_and_refuse_tampering_and_expiry(db: Database) -> None:
    await make_tree(db)
    staff = await create_staff(db, "chair1", "long enough", "chair")
    code = await rotate_site(db, KEY, "00001")
    site = await authenticate_site(db, KEY, code)
    assert site is not None

    now = 1_800_000_000.0
    for principal in (staff, site):
        token = issue_session_token(KEY, principal, 60, now=now)
        assert principal_from_token(KEY, token, now=now + 59) == principal
        assert await check_session_token(db, KEY, token, now=now) == principal
        with pytest.raises(TokenError, match="expired"):
            principal_from_token(KEY, token, now=now + 61)
        body, sig = token.split(".")
        tampered = body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + sig
        with pytest.raises(TokenError):
            principal_from_token(KEY, tampered, now=now)
        with pytest.raises(TokenError):
            principal_from_token(b"other key", token, now=now)
        with pytest.raises(TokenError):
            principal_from_token(KEY, "garbage", now=now)

    site_token = issue_session_token(KEY, site, 600, now=now)
    claims_role = principal_from_token(KEY, site_token, now=now)
    assert isinstance(claims_role, SitePrincipal)
    # A forged role name or missing claims are refused even when correctly signed.
    with pytest.raises(TokenError):
        principal_from_token(KEY, sign_token(KEY, "x", "emperor", 60, now=now), now=now)
    with pytest.raises(TokenError):
        principal_from_token(KEY, sign_token(KEY, "x", "site", 60, now=now), now=now)

    # The store-checked variant refuses once the credential or account changed.
    await rotate_site(db, KEY, "00001")
    with pytest.raises(TokenError):
        await check_session_token(db, KEY, site_token, now=now)
    staff_token = issue_session_token(KEY, staff, 600, now=now)
    await disable_staff(db, "chair1")
    with pytest.raises(TokenError):
        await check_session_token(db, KEY, staff_token, now=now)


def test_province_visibility_through_the_actor() -> None:
    """A principal's visibility is its `Actor`'s (`actor_of`): one rule for every package."""
    admin = actor_of(StaffPrincipal(1, "admin", "admin", None))
    officer = actor_of(StaffPrincipal(2, "o", "province_officer", 7))
    site = actor_of(SitePrincipal(3, "26734", "Phường Bến Nghé", 7, 11, "commune", 1))
    assert admin.may_see_province(7) and admin.may_see_province(None)
    assert officer.may_see_province(7)
    assert not officer.may_see_province(8) and not officer.may_see_province(None)
    assert site.may_see_province(7)
    assert not site.may_see_province(8) and not site.may_see_province(None)
    assert (officer.kind, officer.name, officer.user_id, officer.province_id) == (
        "staff",
        "o",
        2,
        7,
    )
    assert (site.kind, site.name, site.site_id, site.site_province_id) == ("site", "26734", 3, 7)
    # Only a province officer keeps its province as a limit.
    assert actor_of(StaffPrincipal(4, "c", "chair", 7)).province_id is None


def test_public_surface_is_pinned() -> None:
    """Other packages import these names; changing the list is a deliberate act."""
    from diemcau.accounts import service

    assert sorted(service.__all__) == [
        "AccountError",
        "DuplicateUsername",
        "InvalidDisplayName",
        "InvalidUsername",
        "MIN_PASSWORD_LENGTH",
        "Principal",
        "ProvinceNotAllowed",
        "ProvinceRequired",
        "SitePrincipal",
        "StaffAccount",
        "StaffPrincipal",
        "UnknownProvince",
        "UnknownRole",
        "UnknownSite",
        "UnknownStaff",
        "WeakPassword",
        "authenticate_site",
        "authenticate_staff",
        "change_password",
        "check_session_token",
        "create_staff",
        "device_of",
        "disable_staff",
        "enable_staff",
        "end_staff_sessions",
        "issue_device_token",
        "issue_session_token",
        "join_code",
        "join_link",
        "list_staff",
        "load_site_digests",
        "match_join_code",
        "principal_from_token",
        "rekey_site_digests",
        "revoke_site",
        "rotate_site",
        "split_join_code",
        "verify_join_code",
    ]
    assert all(hasattr(service, name) for name in service.__all__)
