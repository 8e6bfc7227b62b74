"""Ending a staff account's sessions, on logout or on a password change.

Every session token carries the account's token version; bumping the version
refuses every token issued before it (checked at each request through
`accounts.tokencache`, docs/security.md, "Sessions").
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select, update

from diemcau.accounts.errors import UnknownStaff, WeakPassword
from diemcau.accounts.passwords import PASSWORDS
from diemcau.accounts.principals import StaffPrincipal
from diemcau.accounts.staff import MIN_PASSWORD_LENGTH
from diemcau.accounts.tokencache import forget_staff
from diemcau.store import Database
from diemcau.store.models import StaffUser

__all__ = ["change_password", "end_staff_sessions"]


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
