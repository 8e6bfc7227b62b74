"""Staff accounts in the store: created, listed, checked at login, disabled.

Passwords are hashed with argon2 through the process's bounded `PASSWORDS` gate
(`accounts.passwords`): slow on purpose (~50 ms), so it runs in a worker thread,
never on the event loop (docs/architecture.md, "Credentials fit the scale").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from diemcau.accounts.errors import (
    DuplicateUsername,
    InvalidDisplayName,
    InvalidUsername,
    ProvinceNotAllowed,
    ProvinceRequired,
    UnknownProvince,
    UnknownRole,
    UnknownStaff,
    WeakPassword,
)
from diemcau.accounts.passwords import PASSWORDS
from diemcau.accounts.principals import StaffPrincipal, normalise_username
from diemcau.accounts.tokencache import forget_staff
from diemcau.store import Database
from diemcau.store.models import ROLES, StaffUser, Unit
from diemcau.text import nfc

__all__ = [
    "MAX_DISPLAY_NAME",
    "MIN_PASSWORD_LENGTH",
    "StaffAccount",
    "authenticate_staff",
    "create_staff",
    "disable_staff",
    "enable_staff",
    "list_staff",
    "session_epochs",
]

MIN_PASSWORD_LENGTH = 8
MAX_DISPLAY_NAME = 200
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")


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
    values: dict[str, object] = {"disabled": disabled}
    if disabled:  # its sessions end: enabled again, it must log in again
        values["token_version"] = StaffUser.token_version + 1
    async with db.session() as s:
        result = await s.execute(update(StaffUser).where(StaffUser.username == name).values(values))
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise UnknownStaff(f"no staff account '{name}'")
    forget_staff(db.url)


async def disable_staff(db: Database, username: str) -> None:
    """Refuse further logins of `username` and end its sessions (the token version
    moves on, so its tokens stay refused if the account is enabled again)."""
    await _set_disabled(db, username, True)


async def enable_staff(db: Database, username: str) -> None:
    await _set_disabled(db, username, False)


async def session_epochs(db: Database) -> dict[str, tuple[int, bool]]:
    """Every account's username → (its token version, whether it is disabled).

    The version moves on whenever the account's sessions end (logout, a password
    change or reset, a role or province change, the account disabled), so this is
    what the media plane follows to end the Janus sessions those sessions opened
    (docs/media.md, "Who may publish and watch").
    """
    async with db.session() as s:
        rows = await s.execute(
            select(StaffUser.username, StaffUser.token_version, StaffUser.disabled)
        )
        return {r.username: (int(r.token_version), bool(r.disabled)) for r in rows}
