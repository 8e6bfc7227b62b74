"""The hub's in-memory view of site credentials and site metadata.

A national join is 10,799 hellos within seconds; checking each against the
database would serialise them on one connection. The cache holds every usable
credential digest (`accounts.service.load_site_digests`) so a hello costs one
HMAC, and every site's id, province and current `credential_version`, which is
what closes a live session whose credential was rotated or revoked. It is
refreshed on a cache miss (a site provisioned after start) and by polling,
so a rotation done by another process (``diemcau site rotate``) is noticed too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import case, func, select

from diemcau.accounts.service import (
    SitePrincipal,
    authenticate_site,
    load_site_digests,
    principal_from_token,
    split_join_code,
    verify_join_code,
)
from diemcau.security import TokenError, site_secret_digest
from diemcau.store import Database
from diemcau.store.models import Site

__all__ = ["SiteInfo", "CredentialCache"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SiteInfo:
    """What the hub and the staff stream need to know about every site."""

    site_id: int
    code: str
    name: str
    province_id: int | None
    credential_version: int
    revoked: bool


class CredentialCache:
    """Site digests and metadata, loaded in bulk, checked without a database round trip."""

    def __init__(self, db: Database, key: bytes) -> None:
        self.db = db
        self.key = key
        self._digests: dict[str, tuple[str, SitePrincipal]] = {}
        self.sites: dict[int, SiteInfo] = {}
        # Bumped whenever the set of sites or their provinces may have changed.
        self.generation = 0
        self._fingerprint: tuple[int, int, int] | None = None

    async def load(self) -> list[int]:
        """(Re)load everything; returns ids whose credential changed since the last load."""
        digests = await load_site_digests(self.db)
        async with self.db.session() as s:
            rows = (
                await s.execute(
                    select(
                        Site.id,
                        Site.code,
                        Site.name,
                        Site.province_id,
                        Site.credential_version,
                        Site.revoked,
                    )
                )
            ).all()
        sites = {
            r.id: SiteInfo(r.id, r.code, r.name, r.province_id, r.credential_version, r.revoked)
            for r in rows
        }
        changed = [
            sid
            for sid, old in self.sites.items()
            if (new := sites.get(sid)) is None
            or new.credential_version != old.credential_version
            or new.revoked != old.revoked
        ]
        self._digests = digests
        self.sites = sites
        self.generation += 1
        self._fingerprint = (
            len(sites),
            sum(i.credential_version for i in sites.values()),
            sum(1 for i in sites.values() if i.revoked),
        )
        return changed

    async def poll_versions(self) -> list[int]:
        """Cheap check for rotations/revocations: one aggregate row, full reload only if moved.

        Every rotation or revocation bumps a ``credential_version``, so the sum of
        versions (with the count and revoked count) changes whenever anything did.
        """
        async with self.db.session() as s:
            row = (
                await s.execute(
                    select(
                        func.count(Site.id),
                        func.coalesce(func.sum(Site.credential_version), 0),
                        func.coalesce(func.sum(case((Site.revoked, 1), else_=0)), 0),
                    )
                )
            ).one()
        fingerprint = (int(row[0]), int(row[1]), int(row[2]))
        if fingerprint == self._fingerprint:
            return []
        return await self.load()

    def _learn(self, principal: SitePrincipal, join_code: str) -> None:
        """Cache a credential the store just confirmed (no full reload per late site)."""
        parts = split_join_code(join_code)
        if parts is None:
            return
        self._digests[principal.code] = (site_secret_digest(self.key, parts[1]), principal)
        old = self.sites.get(principal.site_id)
        self.sites[principal.site_id] = SiteInfo(
            principal.site_id,
            principal.code,
            principal.name,
            principal.province_id,
            principal.credential_version,
            False,
        )
        if old is None or old.province_id != principal.province_id:
            self.generation += 1
            log.info("site %s joined the directory after start", principal.code)

    def is_current(self, principal: SitePrincipal) -> bool:
        """Whether the credential `principal` proved is still the site's current one."""
        info = self.sites.get(principal.site_id)
        return (
            info is not None
            and not info.revoked
            and info.credential_version == principal.credential_version
        )

    async def authenticate(self, join_code: str | None, token: str | None) -> SitePrincipal | None:
        """The site for a join code or a resume token; None if refused.

        A token signed for an older credential version (rotated/revoked since) is refused.
        """
        if join_code:
            principal = verify_join_code(self.key, self._digests, join_code)
            if principal is None:
                # Maybe provisioned or rotated after our last load: ask the store once.
                principal = await authenticate_site(self.db, self.key, join_code)
                if principal is not None:
                    self._learn(principal, join_code)
            if principal is None or not self.is_current(principal):
                return None
            return principal
        if token:
            try:
                found = principal_from_token(self.key, token)
            except TokenError:
                return None
            if not isinstance(found, SitePrincipal):
                return None
            if found.site_id not in self.sites:
                await self.load()
            return found if self.is_current(found) else None
        return None
