"""Administering staff accounts: list, create, change role and province, reset the
password (which ends the account's sessions), disable and enable — for
administrators only.

`staff.create_staff` and friends do the writing and the checks every caller
shares (username shape, role, province rule, password length); this module adds
what an administration page needs on top: the caller must be an admin, the last
enabled admin can neither be disabled nor lose the role (nobody could undo it),
and every change takes effect on open sessions at once (a session token carries
the role and province, and is refused once they changed: `check_session_token`).
A role or province change also moves the account's token version on, like a
logout: that is the one signal the media plane follows to end the account's
Janus sessions (`staff.session_epochs`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update

from diemcau.accounts.errors import (
    ProvinceNotAllowed,
    ProvinceRequired,
    UnknownProvince,
    UnknownRole,
    UnknownStaff,
    WeakPassword,
)
from diemcau.accounts.passwords import PASSWORDS
from diemcau.accounts.staff import (
    MIN_PASSWORD_LENGTH,
    StaffAccount,
    create_staff,
    disable_staff,
    enable_staff,
    list_staff,
)
from diemcau.accounts.staff_sessions import end_staff_sessions
from diemcau.accounts.tokencache import forget_staff
from diemcau.actors import Actor
from diemcau.errors import Conflict, Invalid
from diemcau.store import Database
from diemcau.store.models import ROLES, StaffUser, Unit
from diemcau.text import nfc

__all__ = ["StaffAdmin", "StaffChange"]

ADMIN = "admin"


@dataclass(frozen=True)
class StaffChange:
    """What an administrator changes on an account (None: leave as is)."""

    role: str | None = None
    province_code: str | None = None
    display_name: str | None = None
    disabled: bool | None = None


class StaffAdmin:
    """Staff accounts as an administrator manages them.

    Args:
        db: the store.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def _check(actor: Actor) -> None:
        actor.require_role("manage staff accounts", ADMIN)

    async def list(self, actor: Actor) -> list[StaffAccount]:
        self._check(actor)
        return await list_staff(self.db)

    async def get(self, actor: Actor, username: str) -> StaffAccount:
        self._check(actor)
        name = nfc(username).lower()
        for account in await list_staff(self.db):
            if account.username == name:
                return account
        raise UnknownStaff(f"no staff account '{name}'")

    async def create(
        self,
        actor: Actor,
        username: str,
        password: str,
        role: str,
        province_code: str | None,
        display_name: str,
    ) -> StaffAccount:
        self._check(actor)
        principal = await create_staff(
            self.db, username, password, role, province_code or None, display_name
        )
        return await self.get(actor, principal.username)

    async def _enabled_admins(self) -> int:
        async with self.db.session() as s:
            n = await s.scalar(
                select(func.count())
                .select_from(StaffUser)
                .where(StaffUser.role == ADMIN, StaffUser.disabled.is_(False))
            )
        return int(n or 0)

    async def _province(self, code: str) -> int:
        async with self.db.session() as s:
            pid = await s.scalar(
                select(Unit.id).where(Unit.code == code.strip(), Unit.level == "province")
            )
        if pid is None:
            raise UnknownProvince(f"province_code: no province with code '{code}'")
        return int(pid)

    async def change(self, actor: Actor, username: str, change: StaffChange) -> StaffAccount:
        """Apply `change`; every check runs before anything is written.

        Raises:
            UnknownStaff: no such account.
            UnknownRole / ProvinceRequired / ProvinceNotAllowed / UnknownProvince:
                the role and province do not fit together.
            Conflict: it would leave no enabled admin.
        """
        current = await self.get(actor, username)
        role = change.role if change.role is not None else current.role
        if role not in ROLES:
            raise UnknownRole(f"role: unknown role '{role}' (one of: {', '.join(ROLES)})")
        province_id: int | None = current.province_id
        if change.province_code is not None:
            province_id = (
                await self._province(change.province_code) if change.province_code else None
            )
        if role == "province_officer" and province_id is None:
            raise ProvinceRequired("province_code: a province officer must be bound to a province")
        if role != "province_officer":
            if change.province_code:
                raise ProvinceNotAllowed(f"province_code: role '{role}' is national and takes none")
            province_id = None
        display = current.display_name
        if change.display_name is not None:
            display = nfc(change.display_name)
            if len(display) > 200:
                raise Invalid("display_name: at most 200 characters", code="bad_name")
        disabled = change.disabled if change.disabled is not None else current.disabled
        loses_admin = current.role == ADMIN and not current.disabled and (role != ADMIN or disabled)
        if loses_admin and await self._enabled_admins() <= 1:
            raise Conflict(
                "this is the last enabled admin: make another admin first", code="last_admin"
            )
        values: dict[str, object] = {
            "role": role,
            "province_id": province_id,
            "display_name": display,
        }
        if (role, province_id) != (current.role, current.province_id):
            # Its sessions end (the media plane follows the version: docs/media.md).
            values["token_version"] = StaffUser.token_version + 1
        async with self.db.session() as s:
            await s.execute(
                update(StaffUser).where(StaffUser.username == current.username).values(values)
            )
        if disabled != current.disabled:
            await (disable_staff if disabled else enable_staff)(self.db, current.username)
        forget_staff(self.db.url)
        return await self.get(actor, current.username)

    async def reset_password(self, actor: Actor, username: str, password: str) -> None:
        """Set a new password and end every session of the account (its tokens are
        refused from the next request on: whoever held them must log in again)."""
        current = await self.get(actor, username)
        if len(password) < MIN_PASSWORD_LENGTH:
            raise WeakPassword(f"password: at least {MIN_PASSWORD_LENGTH} characters")
        digest = await PASSWORDS.hash(password)
        async with self.db.session() as s:
            await s.execute(
                update(StaffUser)
                .where(StaffUser.username == current.username)
                .values(password_hash=digest)
            )
        await end_staff_sessions(self.db, current.user_id)
