"""Staff replace or revoke one site's credential: scope check, write, audit, close its session.

Rotating gives the site a new join code (the old one stops working at once);
revoking leaves it without one. Either bumps the site's credential version, is
written to the audit log, and closes the site's live session through the port the
composition root plugs in (the presence hub), so a stolen code cannot stay
connected (docs/provisioning.md, docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass

from diemcau.accounts.service import join_link, revoke_site, rotate_site
from diemcau.actors import Actor
from diemcau.audit import record_action
from diemcau.directory.sites import SiteDirectory, SiteInfo
from diemcau.errors import NotFound
from diemcau.security import Key

__all__ = ["IssuedCredential", "RevokedCredential", "SessionCloser", "SiteCredentials"]

# Closes the live sessions of these sites at once; returns the sites closed.
SessionCloser = Callable[[Collection[int]], Awaitable[Collection[int]]]


@dataclass(frozen=True)
class IssuedCredential:
    site_code: str
    join_code: str
    join_link: str


@dataclass(frozen=True)
class RevokedCredential:
    site_code: str
    credential_version: int
    sessions_closed: int


class SiteCredentials:
    """Rotation and revocation of one site's credential by a staff member.

    Args:
        sites: the directory's sites (scope checks; forgotten after each write).
        key: the site key ring (new secrets are stored as the digest of its first key).
        public_url: the base of the join links printed for a new code.
        close_sessions: closes a site's live session (None: presence notices the new
            credential version at its next poll).
    """

    def __init__(
        self,
        sites: SiteDirectory,
        key: Key,
        *,
        public_url: str,
        close_sessions: SessionCloser | None = None,
    ) -> None:
        self.sites = sites
        self.db = sites.db
        self.key = key
        self.public_url = public_url
        self._close_sessions = close_sessions

    async def _site(self, actor: Actor, code: str) -> SiteInfo:
        actor.require_staff("manage site credentials")
        site = await self.sites.find_visible(actor, code)
        if site is None:  # unknown or in another province: the same answer
            raise NotFound(f"no site with code {code!r} in your reach", code="unknown_site")
        return site

    async def _after_write(
        self, actor: Actor, action: str, site: SiteInfo, details: Mapping[str, object] | None
    ) -> int:
        self.sites.invalidate()
        await record_action(self.db, actor, action, target=site.code, details=details)
        if self._close_sessions is None:
            return 0
        return len(await self._close_sessions([site.id]))

    async def rotate(
        self, actor: Actor, code: str, *, details: Mapping[str, object] | None = None
    ) -> IssuedCredential:
        """A new join code for the site; the old one stops working at once.

        `details` go into the audit record (e.g. that a printable sheet was asked for).
        """
        site = await self._site(actor, code)
        new_code = await rotate_site(self.db, self.key, code)
        await self._after_write(actor, "site.credential.rotate", site, details)
        return IssuedCredential(code, new_code, join_link(self.public_url, new_code))

    async def revoke(self, actor: Actor, code: str) -> RevokedCredential:
        """No join code works for the site any more; its live session is closed."""
        site = await self._site(actor, code)
        version = await revoke_site(self.db, code)
        closed = await self._after_write(actor, "site.credential.revoke", site, None)
        return RevokedCredential(code, version, closed)
