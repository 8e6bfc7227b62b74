"""Site credentials as the presence server checks them: in memory, without a store round trip.

A national join is 10,799 hellos within seconds; checking each against the
store would serialise them on one connection. The cache holds every usable
credential digest (`accounts.service.load_site_digests`), so a hello costs one
HMAC, and a snapshot of the directory's sites (`directory.sites.SiteDirectory`:
id, code, name, province, `credential_version`, revoked), which is what closes
a live session whose credential was rotated or revoked. It follows the
directory: refreshed on a cache miss (a site provisioned after start) and by
polling the directory's one-row fingerprint, so a rotation done by another
process (``diemcau site rotate``) is noticed too.
"""

from __future__ import annotations

import logging

from diemcau.accounts.service import (
    SitePrincipal,
    authenticate_site,
    load_site_digests,
    match_join_code,
    principal_from_token,
    rekey_site_digests,
    split_join_code,
)
from diemcau.directory.sites import SiteDirectory, SiteInfo
from diemcau.security import Key, KeyRing, TokenError, site_secret_digest
from diemcau.store import Database

__all__ = ["CredentialCache"]

log = logging.getLogger(__name__)


class CredentialCache:
    """Site digests and the directory's sites, loaded in bulk, checked from memory.

    Args:
        db: the store (digests, and a store check for a code the cache misses).
        key: the site key ring (digests of site secrets).
        directory: the directory's read model of sites (shared with other services).
        token_key: the token key ring (resume tokens); `key` when not given.

    A digest that matched with an older key of the ring is made again with the
    current one: the new digest replaces the old in memory at once and is stored
    with the next credential poll (`store_rekeyed`), all in one transaction.

    Attributes:
        sites: every site by id, revoked ones included (a snapshot of `directory`).
        generation: bumped whenever `sites` was rebuilt (holders of derived data
            such as the staff stream's province index rebuild theirs).
    """

    def __init__(
        self, db: Database, key: Key, directory: SiteDirectory, token_key: Key | None = None
    ) -> None:
        self.db = db
        self.key = key if isinstance(key, KeyRing) else KeyRing([key])
        self.token_key = token_key if token_key is not None else self.key
        self.directory = directory
        self._rekeyed: dict[int, tuple[str, str]] = {}  # site id -> (old, new digest)
        self._digests: dict[str, tuple[str, SitePrincipal]] = {}
        self.sites: dict[int, SiteInfo] = {}
        self.generation = 0
        self._seen = -1  # the directory generation `sites` was taken from

    async def load(self, *, reload: bool = False) -> list[int]:
        """Take digests and sites; returns ids whose credential changed since the last take.

        Args:
            reload: reload the directory even if its fingerprint did not move (after a
                write in this process that may not have invalidated it).
        """
        # Digests first: a rotation landing between the two reads then shows in the
        # directory (its new version refuses the old digest), never the other way round.
        digests = await load_site_digests(self.db)
        if reload:
            await self.directory.load()
        else:
            await self.directory.refresh_if_changed()
        infos = await self.directory.all(include_revoked=True)
        self._seen = self.directory.generation
        sites = {info.id: info for info in infos}
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
        return changed

    async def poll(self) -> list[int]:
        """Cheap check for rotations/revocations: one aggregate row, a full take only if moved.

        Every rotation or revocation bumps a ``credential_version``, so the
        directory's fingerprint moves whenever anything did.
        """
        await self.directory.refresh_if_changed()
        if self.directory.generation == self._seen:
            return []
        return await self.load()

    async def unknown(self, site_ids: list[int]) -> list[int]:
        """The ids among `site_ids` the directory does not have (after one refresh)."""
        missing = [sid for sid in site_ids if sid not in self.sites]
        if missing:
            await self.poll()  # maybe created since the last take
            missing = [sid for sid in missing if sid not in self.sites]
        return missing

    def site(self, site_id: int) -> SiteInfo | None:
        """A site from the last take (None if unknown)."""
        return self.sites.get(site_id)

    def knows(self, site_id: int) -> bool:
        return site_id in self.sites

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
            principal = self._check_code(join_code)
            if principal is None:
                # Maybe provisioned or rotated after our last take: ask the store once.
                principal = await authenticate_site(self.db, self.key, join_code)
                if principal is not None:
                    await self._learn(principal, join_code)
            if principal is None or not self.is_current(principal):
                return None
            return principal
        if token:
            try:
                found = principal_from_token(self.token_key, token)
            except TokenError:
                return None
            if not isinstance(found, SitePrincipal):
                return None
            if found.site_id not in self.sites:
                await self.poll()
            return found if self.is_current(found) else None
        return None

    def _check_code(self, join_code: str) -> SitePrincipal | None:
        """The site of a join code, from memory; re-key its digest if an old key made it."""
        found = match_join_code(self.key, self._digests, join_code)
        if found is None:
            return None
        principal, kid = found
        if kid != self.key.current_id:
            parts = split_join_code(join_code)
            assert parts is not None  # it matched a digest
            old = self._digests[principal.code][0]
            new = site_secret_digest(self.key, parts[1])
            self._digests[principal.code] = (new, principal)
            first_old = self._rekeyed.get(principal.site_id, (old, new))[0]
            self._rekeyed[principal.site_id] = (first_old, new)
        return principal

    async def store_rekeyed(self) -> int:
        """Store the digests re-made since the last call (one transaction); how many."""
        if not self._rekeyed:
            return 0
        pending, self._rekeyed = self._rekeyed, {}
        changes = [(sid, old, new) for sid, (old, new) in sorted(pending.items())]
        return await rekey_site_digests(self.db, self.key, changes)

    async def _learn(self, principal: SitePrincipal, join_code: str) -> None:
        """Cache a credential the store just confirmed; follow the directory if it moved."""
        parts = split_join_code(join_code)
        if parts is None:
            return
        self._digests[principal.code] = (site_secret_digest(self.key, parts[1]), principal)
        if not self.is_current(principal):
            log.info("site %s is new or rotated since the last take", principal.code)
            await self.poll()
