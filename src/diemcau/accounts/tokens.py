"""Session tokens (staff and sites) and device tokens: issued, read, confirmed.

A session token is signed with the token key (`InstanceKeys.token`) and carries what a
request needs without a store round trip; `check_session_token` then confirms, from a
cache of a few seconds (`accounts.tokencache`), that the account or site still stands
as the token says: not disabled, same role and province, not logged out (token
version), credential not rotated or revoked (docs/security.md, "Sessions").
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping
from typing import cast

from sqlalchemy import select

from diemcau.accounts.principals import (
    Principal,
    SitePrincipal,
    StaffPrincipal,
    normalise_username,
)
from diemcau.accounts.tokencache import state_cache
from diemcau.security import Key, TokenError, sign_token, verify_token
from diemcau.store import Database
from diemcau.store.models import ROLES, Site, StaffUser

__all__ = [
    "DEVICE_ROLE",
    "DEVICE_TOKEN_TTL_S",
    "SITE_ROLE",
    "check_session_token",
    "device_of",
    "issue_device_token",
    "issue_session_token",
    "principal_from_token",
]

SITE_ROLE = "site"


def issue_session_token(
    key: Key, principal: Principal, ttl_s: int, now: float | None = None
) -> str:
    """A signed, short-lived token standing for `principal` (role "site" or the staff role).

    It carries the province id, for staff the account's token version, and for a
    site its id and `credential_version`, so a reconnect is checked without a
    database round trip.
    """
    if isinstance(principal, StaffPrincipal):
        return sign_token(
            key,
            f"staff:{principal.user_id}",
            principal.role,
            ttl_s,
            now=now,
            uid=principal.user_id,
            usr=principal.username,
            pid=principal.province_id,
            tv=principal.token_version,
        )
    return sign_token(
        key,
        f"site:{principal.site_id}",
        SITE_ROLE,
        ttl_s,
        now=now,
        sid=principal.site_id,
        code=principal.code,
        name=principal.name,
        pid=principal.province_id,
        uid=principal.unit_id,
        kind=principal.kind,
        cv=principal.credential_version,
    )


def _int(extra: Mapping[str, object], name: str) -> int:
    value = extra.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise TokenError("malformed token")
    return value


def _int_or_none(extra: Mapping[str, object], name: str) -> int | None:
    return None if extra.get(name) is None else _int(extra, name)


def _str(extra: Mapping[str, object], name: str) -> str:
    value = extra.get(name)
    if not isinstance(value, str):
        raise TokenError("malformed token")
    return value


def principal_from_token(key: Key, token: str, now: float | None = None) -> Principal:
    """The principal a token was issued for; no database access.

    Raises:
        TokenError: forged, tampered, expired or malformed token.

    The token says nothing about what happened since it was issued: use
    `check_session_token` where a revoked site or a disabled account must be
    refused at once, or compare `credential_version` with a cached value.
    """
    claims = verify_token(key, token, now=now)
    extra = claims.extra
    if claims.role == SITE_ROLE:
        return SitePrincipal(
            site_id=_int(extra, "sid"),
            code=_str(extra, "code"),
            name=_str(extra, "name"),
            province_id=_int_or_none(extra, "pid"),
            unit_id=_int(extra, "uid"),
            kind=_str(extra, "kind"),
            credential_version=_int(extra, "cv"),
        )
    if claims.role in ROLES:
        return StaffPrincipal(
            user_id=_int(extra, "uid"),
            username=_str(extra, "usr"),
            role=claims.role,
            province_id=_int_or_none(extra, "pid"),
            token_version=_int_or_none(extra, "tv") or 0,
        )
    raise TokenError("token has an unknown role")


async def check_session_token(
    db: Database, key: Key, token: str, now: float | None = None
) -> Principal:
    """`principal_from_token`, then confirm with the store that it still holds.

    A site token is refused once its site was revoked or rotated (credential
    version moved on); a staff token once the account was disabled or changed role.
    The state read is cached for a few seconds (`diemcau.accounts.tokencache`):
    changes made through this module apply at once, others within its TTL.

    Raises:
        TokenError: the token is bad or no longer valid.
    """
    principal = principal_from_token(key, token, now=now)
    cache = state_cache(db.url)
    if isinstance(principal, SitePrincipal):
        site_state = cache.get("site", principal.site_id)
        if site_state is None:
            generation = cache.generation
            async with db.session() as s:
                row = (
                    await s.execute(
                        select(Site.credential_version, Site.revoked).where(
                            Site.id == principal.site_id
                        )
                    )
                ).first()
            if row is None:
                raise TokenError("site credential was revoked or replaced")
            site_state = (row.credential_version, bool(row.revoked))
            cache.put("site", principal.site_id, site_state, generation)
        if site_state != (principal.credential_version, False):
            raise TokenError("site credential was revoked or replaced")
        return principal
    staff_state = cache.get("staff", principal.user_id)
    if staff_state is None:
        generation = cache.generation
        async with db.session() as s:
            staff = (
                await s.execute(
                    select(
                        StaffUser.disabled,
                        StaffUser.role,
                        StaffUser.province_id,
                        StaffUser.token_version,
                    ).where(StaffUser.id == principal.user_id)
                )
            ).first()
        if staff is None:
            raise TokenError("staff account was disabled or changed")
        staff_state = (bool(staff.disabled), staff.role, staff.province_id, staff.token_version)
        cache.put("staff", principal.user_id, staff_state, generation)
    disabled, role, province_id, version = cast("tuple[bool, str, int | None, int]", staff_state)
    if (disabled, role, province_id) != (False, principal.role, principal.province_id):
        raise TokenError("staff account was disabled or changed")
    if version != principal.token_version:
        raise TokenError("session ended (logged out or password changed); log in again")
    return principal


DEVICE_ROLE = "device"
DEVICE_TOKEN_TTL_S = 180 * 24 * 3600


def issue_device_token(key: Key, username: str, now: float | None = None) -> str:
    """A token that marks this client as known to `username` (issued at a good login).

    It grants nothing by itself (`principal_from_token` refuses its role): it only
    lets the login throttle give this client a lane of its own for the account
    (`ratelimit.LoginThrottle`, docs/security.md "Login abuse").
    """
    device = base64.urlsafe_b64encode(secrets.token_bytes(12)).decode()
    sub = f"device:{normalise_username(username)}"
    return sign_token(key, sub, DEVICE_ROLE, DEVICE_TOKEN_TTL_S, now=now, did=device)


def device_of(key: Key, token: str, username: str, now: float | None = None) -> str | None:
    """The device id of a valid device token issued for `username`, else None."""
    try:
        claims = verify_token(key, token, now=now)
    except TokenError:
        return None
    device = claims.extra.get("did")
    if claims.role != DEVICE_ROLE or not isinstance(device, str):
        return None
    if claims.sub != f"device:{normalise_username(username)}":
        return None
    return device
