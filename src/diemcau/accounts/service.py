"""Who may act: staff accounts and site credentials.

The session tokens both receive live in `accounts.tokens` and the principals in
`accounts.principals`; this module re-exports them, the one surface other packages
import (pinned by tests/test_accounts_service.py).

Two kinds of principal exist (docs/provisioning.md; docs/architecture.md, "Credentials
fit the scale"):

* **Staff** log in with a username and a password hashed with argon2. Argon2 is
  slow on purpose (~50 ms), so it runs in a worker thread, never on the event loop.
* **Sites** log in with a *join code* ``"<site code>:<secret>"``. The secret is
  160 random bits, so a keyed SHA-256 (HMAC) of it is enough to store
  (`Site.secret_digest`) and checking it costs microseconds: one indexed query and
  one HMAC. That is what lets every site of the country join at once.

Rotating or revoking a site's credential bumps `Site.credential_version`. This
module emits nothing else: the presence server closes the live sessions of a
rotated or revoked site by comparing the ``credential_version`` of each session's
`SitePrincipal` (and of every resume token) with the stored one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from diemcau.accounts.passwords import PASSWORDS
from diemcau.accounts.principals import (
    Principal,
    SitePrincipal,
    StaffPrincipal,
    normalise_username,
)
from diemcau.accounts.tokencache import forget_sites, forget_staff
from diemcau.accounts.tokens import (
    check_session_token,
    device_of,
    issue_device_token,
    issue_session_token,
    principal_from_token,
)
from diemcau.errors import Conflict, DomainError, Invalid, NotFound
from diemcau.security import (
    Key,
    KeyRing,
    match_site_secret,
    new_site_secret,
    site_secret_digest,
)
from diemcau.store import Database
from diemcau.store.models import ROLES, Site, StaffUser, Unit, utcnow
from diemcau.text import nfc

__all__ = [
    "MIN_PASSWORD_LENGTH",
    "AccountError",
    "DuplicateUsername",
    "InvalidUsername",
    "InvalidDisplayName",
    "UnknownRole",
    "WeakPassword",
    "ProvinceRequired",
    "ProvinceNotAllowed",
    "UnknownProvince",
    "UnknownStaff",
    "UnknownSite",
    "StaffPrincipal",
    "SitePrincipal",
    "Principal",
    "StaffAccount",
    "create_staff",
    "authenticate_staff",
    "list_staff",
    "disable_staff",
    "enable_staff",
    "end_staff_sessions",
    "change_password",
    "issue_device_token",
    "device_of",
    "join_code",
    "join_link",
    "split_join_code",
    "authenticate_site",
    "load_site_digests",
    "verify_join_code",
    "match_join_code",
    "rekey_site_digests",
    "rotate_site",
    "revoke_site",
    "issue_session_token",
    "principal_from_token",
    "check_session_token",
]

MIN_PASSWORD_LENGTH = 8
MAX_DISPLAY_NAME = 200
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")


# --- errors -----------------------------------------------------------------------------


class AccountError(DomainError, ValueError):
    """Base of every refusal raised here; a ValueError so plain callers can catch it."""


class DuplicateUsername(AccountError, Conflict):
    code = "duplicate_username"


class InvalidUsername(AccountError, Invalid):
    code = "invalid_username"


class InvalidDisplayName(AccountError, Invalid):
    code = "invalid_display_name"


class UnknownRole(AccountError, Invalid):
    code = "unknown_role"


class WeakPassword(AccountError, Invalid):
    code = "weak_password"


class ProvinceRequired(AccountError, Invalid):
    code = "province_required"


class ProvinceNotAllowed(AccountError, Invalid):
    code = "province_not_allowed"


class UnknownProvince(AccountError, NotFound):
    code = "unknown_province"


class UnknownStaff(AccountError, NotFound):
    code = "unknown_staff"


class UnknownSite(AccountError, NotFound):
    code = "unknown_site"


@dataclass(frozen=True)
class StaffAccount:
    """A staff account as listed to administrators (never carries the password hash)."""

    user_id: int
    username: str
    display_name: str
    role: str
    province_id: int | None
    province_code: str | None
    disabled: bool
    created_at: datetime


# --- staff ------------------------------------------------------------------------------


async def _province_id(db: Database, province_code: str) -> int:
    async with db.session() as s:
        pid = await s.scalar(
            select(Unit.id).where(Unit.code == province_code.strip(), Unit.level == "province")
        )
    if pid is None:
        raise UnknownProvince(f"no province with code '{province_code}'")
    return pid


async def create_staff(
    db: Database,
    username: str,
    password: str,
    role: str,
    province_code: str | None = None,
    display_name: str = "",
) -> StaffPrincipal:
    """Create a staff account; every check runs before anything is written.

    Raises:
        InvalidUsername: not 2-64 of ``a-z 0-9 . _ @ -`` (case-insensitive).
        InvalidDisplayName: longer than `MAX_DISPLAY_NAME`.
        UnknownRole: `role` not in `store.models.ROLES`.
        WeakPassword: shorter than `MIN_PASSWORD_LENGTH`.
        ProvinceRequired / ProvinceNotAllowed: a province officer needs a
            province; other roles are national and take none.
        UnknownProvince: no province unit with that code.
        DuplicateUsername: the username is taken.
    """
    name = normalise_username(username)
    if not _USERNAME.match(name):
        raise InvalidUsername(
            f"username '{username}' must be 2-64 characters of letters, digits, '.', '_', '@', '-'"
        )
    if len(nfc(display_name)) > MAX_DISPLAY_NAME:
        raise InvalidDisplayName(f"display name must have at most {MAX_DISPLAY_NAME} characters")
    if role not in ROLES:
        raise UnknownRole(f"unknown role '{role}' (one of: {', '.join(ROLES)})")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    province_id: int | None = None
    if role == "province_officer":
        if not province_code:
            raise ProvinceRequired("a province_officer must be bound to a province")
        province_id = await _province_id(db, province_code)
    elif province_code:
        raise ProvinceNotAllowed(f"role '{role}' is national and takes no province")
    async with db.session() as s:
        if await s.scalar(select(StaffUser.id).where(StaffUser.username == name)) is not None:
            raise DuplicateUsername(f"username '{name}' is already taken")
    password_hash = await PASSWORDS.hash(password)
    user = StaffUser(
        username=name,
        display_name=nfc(display_name),
        password_hash=password_hash,
        role=role,
        province_id=province_id,
    )
    try:
        async with db.session() as s:
            s.add(user)
            await s.flush()
            user_id = user.id
    except IntegrityError as exc:  # a concurrent insert won the race
        raise DuplicateUsername(f"username '{name}' is already taken") from exc
    return StaffPrincipal(user_id=user_id, username=name, role=role, province_id=province_id)


_DUMMY_HASH: str | None = None


async def _dummy_hash() -> str:
    """A hash to verify against for unknown users, so timing does not reveal usernames."""
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = await PASSWORDS.hash("not a real password, only a timing decoy")
    return _DUMMY_HASH


async def authenticate_staff(db: Database, username: str, password: str) -> StaffPrincipal | None:
    """The staff principal for a correct username and password, else None.

    Disabled accounts are refused. Unknown usernames cost one argon2 check too (so
    timing does not reveal which exist). Checks wait for a slot of the process's
    `PASSWORDS` gate.

    Raises:
        Unavailable: too many checks are waiting already (nothing was checked).
    """
    name = normalise_username(username)
    async with db.session() as s:
        row = (
            await s.execute(
                select(
                    StaffUser.id,
                    StaffUser.password_hash,
                    StaffUser.role,
                    StaffUser.province_id,
                    StaffUser.disabled,
                    StaffUser.token_version,
                ).where(StaffUser.username == name)
            )
        ).first()
    if row is None:
        await PASSWORDS.verify(await _dummy_hash(), password)
        return None
    ok = await PASSWORDS.verify(row.password_hash, password)
    if not ok or row.disabled:
        return None
    return StaffPrincipal(
        user_id=row.id,
        username=name,
        role=row.role,
        province_id=row.province_id,
        token_version=row.token_version,
    )


async def end_staff_sessions(db: Database, user_id: int) -> int:
    """Refuse every session token issued to the account so far; the new token version.

    Logout, a password change and an administrator's reset call it. Tokens are
    checked against the version at each request (cached at most
    `tokencache.TTL_S`, forgotten at once in this process).

    Raises:
        UnknownStaff: no such account.
    """
    async with db.session() as s:
        result = await s.execute(
            update(StaffUser)
            .where(StaffUser.id == user_id)
            .values(token_version=StaffUser.token_version + 1)
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            raise UnknownStaff(f"no staff account {user_id}")
        version = await s.scalar(select(StaffUser.token_version).where(StaffUser.id == user_id))
    forget_staff(db.url)
    return int(version or 0)


async def change_password(
    db: Database, principal: StaffPrincipal, old_password: str, new_password: str
) -> StaffPrincipal | None:
    """Replace the caller's own password, ending every session it had.

    Returns the principal under its new token version, or None when `old_password`
    is wrong (nothing changed).

    Raises:
        WeakPassword: the new password is shorter than `MIN_PASSWORD_LENGTH` or the
            same as the old one.
        Unavailable: the password gate is full (nothing changed).
    """
    if len(new_password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"new_password: at least {MIN_PASSWORD_LENGTH} characters")
    if new_password == old_password:
        raise WeakPassword("new_password: must differ from the current password")
    async with db.session() as s:
        stored = await s.scalar(
            select(StaffUser.password_hash).where(
                StaffUser.id == principal.user_id, StaffUser.disabled.is_(False)
            )
        )
    if stored is None or not await PASSWORDS.verify(stored, old_password):
        return None
    digest = await PASSWORDS.hash(new_password)
    async with db.session() as s:
        await s.execute(
            update(StaffUser).where(StaffUser.id == principal.user_id).values(password_hash=digest)
        )
    version = await end_staff_sessions(db, principal.user_id)
    return replace(principal, token_version=version)


async def list_staff(db: Database) -> list[StaffAccount]:
    """Every staff account, by username."""
    async with db.session() as s:
        rows = (
            await s.execute(
                select(StaffUser, Unit.code)
                .outerjoin(Unit, Unit.id == StaffUser.province_id)
                .order_by(StaffUser.username)
            )
        ).all()
    return [
        StaffAccount(
            user_id=u.id,
            username=u.username,
            display_name=u.display_name,
            role=u.role,
            province_id=u.province_id,
            province_code=code,
            disabled=u.disabled,
            created_at=u.created_at,
        )
        for u, code in rows
    ]


async def _set_disabled(db: Database, username: str, disabled: bool) -> None:
    name = normalise_username(username)
    async with db.session() as s:
        result = await s.execute(
            update(StaffUser).where(StaffUser.username == name).values(disabled=disabled)
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise UnknownStaff(f"no staff account '{name}'")
    forget_staff(db.url)


async def disable_staff(db: Database, username: str) -> None:
    """Refuse further logins of `username` (tokens already issued expire on their own)."""
    await _set_disabled(db, username, True)


async def enable_staff(db: Database, username: str) -> None:
    await _set_disabled(db, username, False)


# --- sites ------------------------------------------------------------------------------


def join_code(site_code: str, secret: str) -> str:
    """The join code a site types or scans: ``"<site code>:<secret>"``."""
    return f"{site_code}:{secret}"


def join_link(base_url: str, code: str) -> str:
    """``{base}/join#<site code>:<secret>`` for a join code.

    The secret rides in the URL fragment, which browsers never send to the
    server, so it stays out of access logs. The site code is percent-encoded
    (official codes are digits and stay as they are; an imported code with a
    space or ``#`` would otherwise break the link), so the join page reads the
    fragment with ``decodeURIComponent``.
    """
    site_code, _, secret = code.rpartition(":")
    return f"{base_url.rstrip('/')}/join#{quote(site_code, safe='')}:{secret}"


def split_join_code(code: str) -> tuple[str, str] | None:
    """``(site code, secret)`` from a join code, or None when malformed.

    Splits at the last colon: secrets are URL-safe base64 and never contain one,
    while an imported site code might.
    """
    site_code, sep, secret = code.strip().rpartition(":")
    if not sep or not site_code or not secret:
        return None
    return site_code, secret


_SITE_COLUMNS = (
    Site.id,
    Site.code,
    Site.name,
    Site.province_id,
    Site.unit_id,
    Site.kind,
    Site.credential_version,
    Site.secret_digest,
)


def _site_principal(row: Any) -> SitePrincipal:
    return SitePrincipal(
        site_id=row.id,
        code=row.code,
        name=row.name,
        province_id=row.province_id,
        unit_id=row.unit_id,
        kind=row.kind,
        credential_version=row.credential_version,
    )


async def authenticate_site(db: Database, key: Key, code: str) -> SitePrincipal | None:
    """The site principal for a valid join code, else None.

    One indexed query (the unique site code) plus one HMAC per key of the ring; no
    argon2. Unknown, revoked, never-provisioned sites and secrets replaced by a
    rotation are refused. A digest made with an older key is made again with the
    current one (the key rotation completes at each site's next login).
    """
    parts = split_join_code(code)
    if parts is None:
        return None
    site_code, secret = parts
    async with db.session() as s:
        row = (
            await s.execute(
                select(*_SITE_COLUMNS).where(Site.code == site_code, Site.revoked.is_(False))
            )
        ).first()
    if row is None:
        return None
    kid = match_site_secret(key, row.secret_digest, secret)
    if kid is None:
        return None
    ring = key if isinstance(key, KeyRing) else KeyRing([key])
    if kid != ring.current_id:
        await rekey_site_digests(
            db, ring, [(row.id, row.secret_digest, site_secret_digest(ring, secret))]
        )
    return _site_principal(row)


async def rekey_site_digests(
    db: Database, ring: KeyRing, changes: Sequence[tuple[int, str, str]]
) -> int:
    """Store digests re-made with the ring's current key: ``(site id, old, new)`` each.

    A site whose digest changed meanwhile (rotated, revoked) is left alone, so a
    late re-key never brings back a replaced secret. Returns how many were stored.
    """
    done = 0
    async with db.session() as s:
        for site_id, old, new in changes:
            result = await s.execute(
                update(Site)
                .where(Site.id == site_id, Site.secret_digest == old)
                .values(secret_digest=new, secret_key_id=ring.current_id)
            )
            done += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return done


async def load_site_digests(db: Database) -> dict[str, tuple[str, SitePrincipal]]:
    """Every usable site credential: ``{code: (digest, principal)}`` in one query.

    The presence server keeps this map so a burst of thousands of logins costs an
    HMAC each and no database round trip (check with `verify_join_code`); it
    reloads it, or the one site, after a rotation or revocation.
    """
    async with db.session() as s:
        rows = (
            await s.execute(
                select(*_SITE_COLUMNS).where(
                    Site.revoked.is_(False), Site.secret_digest.is_not(None)
                )
            )
        ).all()
    return {row.code: (row.secret_digest, _site_principal(row)) for row in rows}


def match_join_code(
    key: Key, digests: Mapping[str, tuple[str, SitePrincipal]], code: str
) -> tuple[SitePrincipal, str] | None:
    """Check a join code against a map from `load_site_digests`: the site and the id
    of the key that made its digest (not the current one: re-key it), or None."""
    parts = split_join_code(code)
    if parts is None:
        return None
    entry = digests.get(parts[0])
    if entry is None:
        return None
    kid = match_site_secret(key, entry[0], parts[1])
    return None if kid is None else (entry[1], kid)


def verify_join_code(
    key: Key, digests: Mapping[str, tuple[str, SitePrincipal]], code: str
) -> SitePrincipal | None:
    """Check a join code against a map from `load_site_digests`."""
    found = match_join_code(key, digests, code)
    return None if found is None else found[0]


async def rotate_site(db: Database, key: Key, site_code: str) -> str:
    """Give one site a new secret and return its new join code.

    The old secret stops working at once; `credential_version` is bumped so live
    sessions holding the old version are closed by the presence server. A revoked
    site is reinstated by rotation (that is how a replacement credential is issued).

    Raises:
        UnknownSite: no site with that code.
    """
    secret = new_site_secret()
    async with db.session() as s:
        result = await s.execute(
            update(Site)
            .where(Site.code == site_code)
            .values(
                secret_digest=site_secret_digest(key, secret),
                secret_key_id=(key if isinstance(key, KeyRing) else KeyRing([key])).current_id,
                credential_version=Site.credential_version + 1,
                credential_issued_at=utcnow(),
                revoked=False,
            )
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise UnknownSite(f"no site with code '{site_code}'")
    forget_sites(db.url)
    return join_code(site_code, secret)


async def revoke_site(db: Database, site_code: str) -> int:
    """Revoke one site's credential; return the new `credential_version`.

    The digest is cleared, so no secret can ever match again until `rotate_site`.

    Raises:
        UnknownSite: no site with that code.
    """
    async with db.session() as s:
        result = await s.execute(
            update(Site)
            .where(Site.code == site_code)
            .values(
                revoked=True,
                secret_digest=None,
                secret_key_id=None,
                credential_version=Site.credential_version + 1,
            )
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise UnknownSite(f"no site with code '{site_code}'")
        version = await s.scalar(select(Site.credential_version).where(Site.code == site_code))
    forget_sites(db.url)
    return int(version or 0)
