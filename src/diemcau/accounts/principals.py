"""Who a credential proved to be: a staff member or a site (the two principals).

The API and the site-session server authenticate a request into one of these, then
turn it into an `Actor` (`accounts.actors.actor_of`) before any service sees it.
"""

from __future__ import annotations

from dataclasses import dataclass

from diemcau.text import nfc

__all__ = ["Principal", "SitePrincipal", "StaffPrincipal", "normalise_username"]


def normalise_username(username: str) -> str:
    """Usernames are case-insensitive and compared in NFC."""
    return nfc(username).lower()


@dataclass(frozen=True)
class StaffPrincipal:
    """An authenticated staff member. `province_id` is set only for province officers.

    `token_version` is the account's session generation its token was issued under:
    logout, a password change or reset bump it, and older tokens are refused.
    """

    user_id: int
    username: str
    role: str
    province_id: int | None
    token_version: int = 0


@dataclass(frozen=True)
class SitePrincipal:
    """An authenticated site (điểm cầu).

    `credential_version` is the version of the credential it proved; a session
    holding an older version than the store must be closed.
    """

    site_id: int
    code: str
    name: str
    province_id: int | None
    unit_id: int
    kind: str
    credential_version: int


Principal = StaffPrincipal | SitePrincipal
