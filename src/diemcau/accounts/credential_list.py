"""The state of site credentials, as the administration page lists them: which sites
hold a working credential, since when, which were revoked and which never got one.

Rotating (a new secret and join link, the old one refused at once) and revoking
stay in `accounts.site_credentials`; this module only reads, with the caller's scope (an
officer lists its province's sites).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import aliased

from diemcau.actors import Actor
from diemcau.store import Database
from diemcau.store.models import Site, Unit
from diemcau.text import fold

__all__ = ["CredentialRow", "CredentialState", "list_credentials"]

CredentialState = Literal["all", "active", "revoked", "never"]

# Roles that manage site credentials (as the rotate and revoke routes allow).
CREDENTIAL_ROLES = ("admin", "operator", "province_officer")


@dataclass(frozen=True)
class CredentialRow:
    site_id: int
    code: str
    name: str
    kind: str
    province_code: str
    province_name: str
    state: str  # "active", "revoked" or "never"
    version: int
    issued_at: datetime | None


async def list_credentials(
    db: Database,
    actor: Actor,
    *,
    q: str = "",
    province_id: int | None = None,
    state: CredentialState = "all",
    limit: int = 500,
) -> list[CredentialRow]:
    """Sites in the actor's reach with their credential state, by province and code.

    ``q`` matches the site's name without diacritics, or the start of its code.
    """
    actor.require_role("manage site credentials", *CREDENTIAL_ROLES)
    scope = actor.scope(province_id)
    province = aliased(Unit)
    query = (
        select(
            Site.id,
            Site.code,
            Site.name,
            Site.kind,
            Site.credential_version,
            Site.credential_issued_at,
            Site.revoked,
            Site.secret_digest.is_not(None).label("issued"),
            province.code.label("pcode"),
            province.name.label("pname"),
        )
        .outerjoin(province, province.id == Site.province_id)
        .order_by(province.code, Site.code)
    )
    if scope is not None:
        query = query.where(Site.province_id == scope)
    key = fold(q)
    if key:
        query = query.where(
            Site.search_key.contains(key, autoescape=True)
            | Site.code.startswith(q.strip(), autoescape=True)
        )
    if state == "revoked":
        query = query.where(Site.revoked.is_(True))
    elif state == "active":
        query = query.where(Site.revoked.is_(False), Site.secret_digest.is_not(None))
    elif state == "never":
        query = query.where(Site.revoked.is_(False), Site.secret_digest.is_(None))
    async with db.session() as s:
        rows = (await s.execute(query.limit(max(1, min(limit, 20000))))).all()
    return [
        CredentialRow(
            r.id,
            r.code,
            r.name,
            r.kind,
            r.pcode or "",
            r.pname or "",
            "revoked" if r.revoked else ("active" if r.issued else "never"),
            int(r.credential_version or 0),
            r.credential_issued_at,
        )
        for r in rows
    ]
