"""Site credentials in the store: checked at login, loaded, re-keyed, rotated, revoked.

Only a keyed digest of each site's secret is stored (`Site.secret_digest`); checking a
join code is one indexed query and one HMAC, no argon2. Rotating or revoking bumps
`Site.credential_version`, and nothing else is emitted: the presence server closes
the live sessions of a rotated or revoked site by comparing the
``credential_version`` of each session's `SitePrincipal` (and of every resume token)
with the stored one.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Row, select, update

from diemcau.accounts.errors import UnknownSite
from diemcau.accounts.join_codes import join_code, split_join_code
from diemcau.accounts.principals import SitePrincipal
from diemcau.accounts.tokencache import forget_sites
from diemcau.security import (
    Key,
    KeyRing,
    match_site_secret,
    new_site_secret,
    site_secret_digest,
)
from diemcau.store import Database
from diemcau.store.models import Site, utcnow

__all__ = [
    "authenticate_site",
    "load_site_digests",
    "rekey_site_digests",
    "revoke_site",
    "rotate_site",
]


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


# A row of `_SITE_COLUMNS`, in their order.
_SiteRow = Row[int, str, str, int | None, int, str, int, str | None]


def _site_principal(row: _SiteRow) -> SitePrincipal:
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
