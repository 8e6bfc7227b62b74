"""The directory's read model of sites: one typed record per site that every package asks.

Presence, meetings, command, media and the API need a site's code, name, province or
coordinates on hot paths (a join, a broadcast, a relay plan). They ask one
`SiteDirectory` instead of querying the ``sites`` table themselves: it loads every site
in one query (10,795 sites take a few MB), answers from memory, and reloads when the
table moved. Writers in this process call `invalidate`; writes by another process (a
CLI import beside a running server) are seen at the next `refresh_if_changed`, which
costs one aggregate row (docs/architecture.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from diemcau.actors import Actor
from diemcau.store import Database
from diemcau.store.models import Site, Unit

__all__ = ["SiteDirectory", "SiteInfo"]

_K = TypeVar("_K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class SiteInfo:
    """One site as every package sees it.

    Attributes:
        id: the site id (sessions, meetings and reports speak in ids).
        code: the site code ("TW", "79-26740" ...), unique.
        name: the site's name.
        kind: "chair" for the central site, else its unit's level.
        unit_id: the administrative unit it is bound to.
        province_id: its province's unit id; None for the chair site.
        province_code: its province's code ("" for the chair site).
        province_name: its province's name ("" for the chair site).
        lat: its unit's centroid latitude, if known.
        lon: its unit's centroid longitude, if known.
        credential_version: bumped by every provisioning, rotation and revocation.
        revoked: whether its credential was revoked (it cannot connect).
    """

    id: int
    code: str
    name: str
    kind: str
    unit_id: int
    province_id: int | None
    province_code: str
    province_name: str
    lat: float | None
    lon: float | None
    credential_version: int
    revoked: bool


# (count, max id, sum of credential versions, revoked count): moves whenever a site is
# added, removed, provisioned, rotated or revoked.
_Fingerprint = tuple[int, int, int, int]


class SiteDirectory:
    """Every site of the directory, in memory, loaded on first use.

    Args:
        db: the store.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._by_id: dict[int, SiteInfo] = {}
        self._by_code: dict[str, SiteInfo] = {}
        self._loaded = False
        self._fingerprint: _Fingerprint | None = None
        self._lock = asyncio.Lock()
        # Bumped at every reload, so holders of derived data know to rebuild it.
        self.generation = 0

    # --- loading ----------------------------------------------------------------------

    async def load(self) -> None:
        """(Re)load every site in one query."""
        async with self._lock:
            await self._load()

    async def _load(self) -> None:
        province = aliased(Unit)
        query = (
            select(
                Site.id,
                Site.code,
                Site.name,
                Site.kind,
                Site.unit_id,
                Site.province_id,
                province.code,
                province.name,
                Unit.lat,
                Unit.lon,
                Site.credential_version,
                Site.revoked,
            )
            .join(Unit, Unit.id == Site.unit_id)
            .outerjoin(province, province.id == Site.province_id)
            .order_by(Site.id)
        )
        async with self.db.session() as session:
            rows = (await session.execute(query)).all()
            fingerprint = await self._read_fingerprint(session)
        by_id: dict[int, SiteInfo] = {}
        for sid, code, name, kind, unit_id, pid, pcode, pname, lat, lon, version, revoked in rows:
            by_id[int(sid)] = SiteInfo(
                id=int(sid),
                code=str(code),
                name=str(name),
                kind=str(kind),
                unit_id=int(unit_id),
                province_id=None if pid is None else int(pid),
                province_code=str(pcode or ""),
                province_name=str(pname or ""),
                lat=None if lat is None else float(lat),
                lon=None if lon is None else float(lon),
                credential_version=int(version or 0),
                revoked=bool(revoked),
            )
        self._by_id = by_id
        self._by_code = {info.code: info for info in by_id.values()}
        self._fingerprint = fingerprint
        self._loaded = True
        self.generation += 1

    @staticmethod
    async def _read_fingerprint(session: AsyncSession) -> _Fingerprint:
        row = (
            await session.execute(
                select(
                    func.count(Site.id),
                    func.coalesce(func.max(Site.id), 0),
                    func.coalesce(func.sum(Site.credential_version), 0),
                    func.coalesce(func.sum(case((Site.revoked, 1), else_=0)), 0),
                )
            )
        ).one()
        return (int(row[0]), int(row[1]), int(row[2]), int(row[3]))

    async def refresh_if_changed(self) -> bool:
        """Reload if the sites table moved since the last load (one aggregate row).

        Returns:
            Whether a reload happened.
        """
        async with self._lock:
            if not self._loaded:
                await self._load()
                return True
            async with self.db.session() as session:
                fingerprint = await self._read_fingerprint(session)
            if fingerprint == self._fingerprint:
                return False
            await self._load()
            return True

    def invalidate(self) -> None:
        """Forget everything; the next question reloads (call after writing sites)."""
        self._loaded = False

    async def _ensure(self) -> None:
        if not self._loaded:
            async with self._lock:
                if not self._loaded:
                    await self._load()

    # --- questions --------------------------------------------------------------------

    async def all(self, *, include_revoked: bool = False) -> list[SiteInfo]:
        """Every site ordered by id (revoked ones only when asked)."""
        await self._ensure()
        return [s for s in self._by_id.values() if include_revoked or not s.revoked]

    async def _pick(
        self, keys: Iterable[_K], table: Callable[[], Mapping[_K, SiteInfo]], reload: bool
    ) -> dict[_K, SiteInfo]:
        """The known sites among `keys` in `table()`; with `reload`, a miss first reloads
        the sites if the table moved (one aggregate row, and only on a miss)."""
        await self._ensure()
        wanted = list(dict.fromkeys(keys))
        found = {k: table()[k] for k in wanted if k in table()}
        if len(found) < len(wanted) and reload and await self.refresh_if_changed():
            found = {k: table()[k] for k in wanted if k in table()}
        return found

    async def get(self, site_id: int, *, reload_missing: bool = False) -> SiteInfo | None:
        """The site with this id, if any.

        With `reload_missing`, an unknown id first reloads the sites if the table moved
        (a site added since the load); the check costs one aggregate row, and only on
        a miss.
        """
        return (await self.by_ids([site_id], reload_missing=reload_missing)).get(site_id)

    async def find(self, code: str, *, reload_missing: bool = False) -> SiteInfo | None:
        """The site with this code, if any (`reload_missing` as in `get`)."""
        return (await self.by_codes([code], reload_missing=reload_missing)).get(code)

    async def find_visible(self, actor: Actor, code: str) -> SiteInfo | None:
        """The site with this code if `actor` may see it, else None.

        None both when no such site exists and when it lies outside the actor's
        reach (another province for an officer, another site for a site): callers
        answer the two the same way, so a refusal never tells which site codes exist
        elsewhere (docs/security.md, "Who may do what").
        """
        site = await self.find(code, reload_missing=True)
        if site is None or not actor.may_touch(site.id, site.province_id):
            return None
        return site

    async def get_visible(self, actor: Actor, site_id: int) -> SiteInfo | None:
        """`find_visible` by site id."""
        site = await self.get(site_id, reload_missing=True)
        if site is None or not actor.may_touch(site.id, site.province_id):
            return None
        return site

    async def by_ids(
        self, site_ids: Iterable[int], *, reload_missing: bool = False
    ) -> dict[int, SiteInfo]:
        """The known sites among `site_ids` (unknown ids are left out; `reload_missing`
        as in `get`)."""
        return await self._pick(site_ids, lambda: self._by_id, reload_missing)

    async def by_codes(
        self, codes: Iterable[str], *, reload_missing: bool = False
    ) -> dict[str, SiteInfo]:
        """The known sites among `codes` (unknown codes are left out; `reload_missing`
        as in `get`)."""
        return await self._pick(codes, lambda: self._by_code, reload_missing)

    async def in_province(
        self, province_id: int, *, include_revoked: bool = False
    ) -> list[SiteInfo]:
        await self._ensure()
        return [
            s
            for s in self._by_id.values()
            if s.province_id == province_id and (include_revoked or not s.revoked)
        ]

    def peek(self, site_id: int) -> SiteInfo | None:
        """A site from memory without loading (for synchronous hot paths after `load`)."""
        return self._by_id.get(site_id)
