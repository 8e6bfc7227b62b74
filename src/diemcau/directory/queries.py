"""Reading the stored tree: counts, a unit's children, one unit or one site in detail.

Queries return the typed read models of `diemcau.directory.schemas`. Every query
takes ``province_scope``: the id of the province a caller (a province officer) is
limited to; a unit or site outside it raises `diemcau.errors.Forbidden` (a site is
answered like a missing one instead, docs/security.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from diemcau.directory.schemas import SiteDetail, SiteRef, UnitDetail, UnitNode, UnitRef
from diemcau.errors import Forbidden, NotFound
from diemcau.store import Database
from diemcau.store.models import LEVELS, Site, Unit

__all__ = ["children", "site_detail", "stats", "unit_detail"]


async def stats(db: Database, *, province_scope: int | None = None) -> dict[str, int]:
    """Units per level present, then ``"sites"``: ``{"province": 34, ..., "sites": 3356}``.

    Levels come in tree order (country, province, district, commune, then any other);
    with ``province_scope`` only that province's units and sites are counted.
    """
    units_q = select(Unit.level, func.count()).group_by(Unit.level)
    sites_q = select(func.count()).select_from(Site)
    if province_scope is not None:
        units_q = units_q.where(Unit.province_id == province_scope)
        sites_q = sites_q.where(Site.province_id == province_scope)
    async with db.session() as session:
        per_level: dict[str, int] = {
            level: count for level, count in (await session.execute(units_q)).all()
        }
        sites = int(await session.scalar(sites_q) or 0)
    order = {level: index for index, level in enumerate(LEVELS)}
    result = {
        level: per_level[level]
        for level in sorted(per_level, key=lambda lv: (order.get(lv, len(LEVELS)), lv))
    }
    result["sites"] = sites
    return result


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; the store only ever writes UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _unit_ref(unit: Unit) -> UnitRef:
    return UnitRef(id=unit.id, code=unit.code, name=unit.name, level=unit.level)


async def _unit_by_code(session: AsyncSession, code: str) -> Unit:
    unit = await session.scalar(select(Unit).where(Unit.code == code))
    if unit is None:
        raise NotFound(f"no unit with code {code!r}")
    return unit


async def _ancestors(session: AsyncSession, unit: Unit) -> list[Unit]:
    """The unit's ancestors, root first (excluding the unit itself)."""
    chain: list[Unit] = []
    parent_id = unit.parent_id
    while parent_id is not None:
        parent = await session.get(Unit, parent_id)
        if parent is None:
            break
        chain.append(parent)
        parent_id = parent.parent_id
    chain.reverse()
    return chain


async def _site_counts(session: AsyncSession, unit_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Sites bound to each unit or below it, by kind (one recursive query)."""
    if not unit_ids:
        return {}
    below = aliased(Unit)
    sub = (
        select(Unit.id.label("root_id"), Unit.id.label("unit_id"))
        .where(Unit.id.in_(unit_ids))
        .cte("subtree", recursive=True)
    )
    sub = sub.union_all(
        select(sub.c.root_id, below.id).join(below, below.parent_id == sub.c.unit_id)
    )
    query = (
        select(sub.c.root_id, Site.kind, func.count(Site.id))
        .join(Site, Site.unit_id == sub.c.unit_id)
        .group_by(sub.c.root_id, Site.kind)
    )
    counts: dict[int, dict[str, int]] = {ident: {} for ident in unit_ids}
    for root_id, kind, count in (await session.execute(query)).all():
        counts[root_id][kind] = count
    return counts


async def _nodes(session: AsyncSession, units: Sequence[Unit]) -> list[UnitNode]:
    ids = [u.id for u in units]
    counts = await _site_counts(session, ids)
    child_counts: dict[int, int] = {}
    if ids:
        child_q = (
            select(Unit.parent_id, func.count())
            .where(Unit.parent_id.in_(ids))
            .group_by(Unit.parent_id)
        )
        child_counts = {
            parent_id: count
            for parent_id, count in (await session.execute(child_q)).all()
            if parent_id is not None
        }
    return [
        UnitNode(
            id=u.id,
            code=u.code,
            name=u.name,
            level=u.level,
            unit_type=u.unit_type,
            lat=u.lat,
            lon=u.lon,
            child_count=child_counts.get(u.id, 0),
            site_total=sum(counts[u.id].values()),
            sites_by_kind=counts[u.id],
        )
        for u in units
    ]


async def _scope_path(session: AsyncSession, province_scope: int) -> set[int]:
    """Ids of the scoped province and its ancestors (the units above it may be listed)."""
    province = await session.get(Unit, province_scope)
    if province is None:
        raise Forbidden("the caller's province no longer exists")
    return {province.id, *(u.id for u in await _ancestors(session, province))}


async def children(
    db: Database, parent_code: str | None = None, *, province_scope: int | None = None
) -> list[UnitNode]:
    """The child units of ``parent_code`` (the tree's root units when None), with counts.

    With ``province_scope``, the top of the tree is the caller's province: units above
    it list only the branch leading to it, and units of other provinces are refused.

    Raises:
        NotFound: no unit has ``parent_code``.
        Forbidden: the unit lies outside ``province_scope``.
    """
    async with db.session() as session:
        query: Select[Unit] = select(Unit).order_by(Unit.code)
        if parent_code is None:
            if province_scope is not None:
                query = query.where(Unit.id == province_scope)
            else:
                query = query.where(Unit.parent_id.is_(None))
        else:
            parent = await _unit_by_code(session, parent_code)
            query = query.where(Unit.parent_id == parent.id)
            if province_scope is not None and parent.province_id != province_scope:
                path = await _scope_path(session, province_scope)
                if parent.id not in path:
                    raise Forbidden(f"unit {parent_code!r} is outside your province")
                query = query.where(Unit.id.in_(path))
        units = list((await session.scalars(query)).all())
        return await _nodes(session, units)


async def unit_detail(db: Database, code: str, *, province_scope: int | None = None) -> UnitDetail:
    """One unit: its ancestors, province, own sites, children and site counts.

    Raises:
        NotFound: no unit has ``code``.
        Forbidden: the unit lies outside ``province_scope``.
    """
    async with db.session() as session:
        unit = await _unit_by_code(session, code)
        if province_scope is not None and unit.province_id != province_scope:
            raise Forbidden(f"unit {code!r} is outside your province")
        node = (await _nodes(session, [unit]))[0]
        ancestors = await _ancestors(session, unit)
        province = next((u for u in [*ancestors, unit] if u.id == unit.province_id), None)
        sites = (
            await session.scalars(select(Site).where(Site.unit_id == unit.id).order_by(Site.code))
        ).all()
        return UnitDetail(
            **node.model_dump(),
            depth=unit.depth,
            dataset=unit.dataset,
            ancestors=[_unit_ref(u) for u in ancestors],
            province=None if province is None else _unit_ref(province),
            sites=[SiteRef(id=s.id, code=s.code, name=s.name, kind=s.kind) for s in sites],
        )


async def site_detail(db: Database, code: str, *, province_scope: int | None = None) -> SiteDetail:
    """One site: its unit, where that unit lies, and whether it holds a credential.

    Raises:
        NotFound: no site has ``code`` (within ``province_scope`` when given).
    """
    async with db.session() as session:
        row = (
            await session.execute(
                select(Site, Unit).join(Unit, Unit.id == Site.unit_id).where(Site.code == code)
            )
        ).first()
        # A site of another province is answered like a missing one, so an officer
        # cannot tell which codes exist elsewhere (docs/security.md).
        if row is None or (province_scope is not None and row[0].province_id != province_scope):
            where = " in your province" if province_scope is not None else ""
            raise NotFound(f"no site with code {code!r}{where}", code="unknown_site")
        site, unit = row
        ancestors = await _ancestors(session, unit)
        province = next((u for u in [*ancestors, unit] if u.id == site.province_id), None)
        return SiteDetail(
            id=site.id,
            code=site.code,
            name=site.name,
            kind=site.kind,
            unit=_unit_ref(unit),
            ancestors=[_unit_ref(u) for u in ancestors],
            province=None if province is None else _unit_ref(province),
            lat=unit.lat,
            lon=unit.lon,
            provisioned=site.secret_digest is not None,
            revoked=site.revoked,
            credential_version=site.credential_version,
            credential_issued_at=_aware(site.credential_issued_at),
            created_at=_aware(site.created_at) or site.created_at,
        )
