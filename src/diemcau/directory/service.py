"""The national directory over the store: loading trees, counting, browsing, searching.

Loading writes in bulk (one multi-row INSERT or executemany UPDATE per tree level)
because the whole country is 10,795 units plus as many sites: one ORM object per
row would take tens of seconds where this takes a few. A load is idempotent and
updates by code: it inserts new units and sites, updates changed ones, leaves
equal ones and units absent from the input alone, and never touches a site's
credential columns.

Queries return the typed read models of `diemcau.directory.schemas`. Every query
takes ``province_scope``: the id of the province a caller (a province officer) is
limited to; a unit or site outside it raises `diemcau.errors.Forbidden`.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, and_, case, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from diemcau.directory.datasets import load_dataset
from diemcau.directory.records import UnitRecord, plan_sites
from diemcau.directory.schemas import (
    LoadResult,
    SearchHit,
    SiteDetail,
    SiteRef,
    UnitDetail,
    UnitNode,
    UnitRef,
)
from diemcau.errors import Conflict, Forbidden, Invalid, NotFound
from diemcau.store import Database
from diemcau.store.models import LEVELS, Site, Unit
from diemcau.text import fold

__all__ = [
    "ProgressFn",
    "children",
    "load_builtin",
    "load_units",
    "search",
    "site_detail",
    "stats",
    "unit_detail",
]

ProgressFn = Callable[[str, int, int], None]
"""Called as ``progress(stage, done, total)`` while a load runs ("units", "sites")."""

# Datasets whose unit codes mean the same thing and may share one database:
# south-19 is a subset of vn-legacy. vn-2025 reuses legacy codes for other
# communes, so mixing it with the legacy tree would silently merge strangers.
_FAMILIES = {"south-19": "vn-legacy"}

_UNIT_FIELDS = (
    "name",
    "search_key",
    "level",
    "unit_type",
    "parent_id",
    "province_id",
    "depth",
    "lat",
    "lon",
    "dataset",
)
_SITE_FIELDS = ("name", "search_key", "unit_id", "province_id", "kind")


def _family(dataset: str) -> str:
    return _FAMILIES.get(dataset, dataset)


def _depths(records: Sequence[UnitRecord], existing_depth: dict[str, int]) -> dict[str, int]:
    """Depth of every record; parents may be other records or units already stored."""
    by_code: dict[str, UnitRecord] = {}
    for record in records:
        if record.code in by_code:
            raise Invalid(f"unit code {record.code!r} appears twice in the input")
        by_code[record.code] = record
    depth: dict[str, int] = {}
    for record in records:
        chain: list[str] = []
        code: str | None = record.code
        base = -1
        while code is not None:
            if code in depth:
                base = depth[code]
                break
            current = by_code.get(code)
            if current is None:
                if code not in existing_depth:
                    raise Invalid(f"unit {chain[-1]!r} has an unknown parent {code!r}")
                base = existing_depth[code]
                break
            if code in chain:
                raise Invalid(f"the units form a cycle through {code!r}")
            chain.append(code)
            code = current.parent_code
        for offset, member in enumerate(reversed(chain), start=1):
            depth[member] = base + offset
    return depth


async def _insert_returning_ids(
    session: AsyncSession, model: type[Unit] | type[Site], rows: list[dict[str, Any]]
) -> dict[str, int]:
    if not rows:
        return {}
    result = await session.execute(insert(model).returning(model.id, model.code), rows)
    return {code: ident for ident, code in result.all()}


async def load_units(
    db: Database,
    records: Sequence[UnitRecord],
    *,
    dataset: str,
    progress: ProgressFn | None = None,
) -> LoadResult:
    """Insert or update units by code, with their sites, in one transaction.

    Every unit gets one default site (code and name of the unit, kind = its level);
    the root gets the central chair site ``TW`` instead; each of a record's
    ``site_names`` adds a site ``<code>-2``, ``-3`` ...

    Args:
        db: the store.
        records: the tree, in any order; parents are other records or stored units.
        dataset: a label kept on each unit ("vn-2025", "csv" ...).
        progress: optional callback for long loads.

    Raises:
        Invalid: duplicate codes, unknown parents or a cycle in ``records``.
        Conflict: the records would mix incompatible trees in one database (a
            second root, or a code already loaded from another dataset).
    """
    started = time.perf_counter()
    notify = progress or (lambda _stage, _done, _total: None)
    async with db.session() as session:
        stored = {
            row.code: row
            for row in (
                await session.execute(
                    select(Unit.id, Unit.code, *(getattr(Unit, f) for f in _UNIT_FIELDS)).order_by(
                        Unit.id
                    )
                )
            ).all()
        }
        depth = _depths(records, {code: row.depth for code, row in stored.items()})
        stored_roots = {code for code, row in stored.items() if row.parent_id is None}
        for record in records:
            if record.parent_code is None and stored_roots - {record.code}:
                raise Conflict(
                    f"the database already holds the tree rooted at "
                    f"{sorted(stored_roots)[0]!r}; load {record.code!r} into a fresh database"
                )
            old = stored.get(record.code)
            if old is not None and _family(old.dataset) != _family(dataset):
                raise Conflict(
                    f"unit {record.code!r} was loaded from {old.dataset!r}, which cannot be "
                    f"mixed with {dataset!r}; use a fresh database"
                )

        ids = {code: row.id for code, row in stored.items()}
        province_of = {code: row.province_id for code, row in stored.items()}
        by_depth: dict[int, list[UnitRecord]] = defaultdict(list)
        for record in records:
            by_depth[depth[record.code]].append(record)
        inserted = updated = unchanged = done = 0
        for level_depth in sorted(by_depth):
            new_rows: list[dict[str, Any]] = []
            changes: list[dict[str, Any]] = []
            for record in by_depth[level_depth]:
                parent = record.parent_code
                values: dict[str, Any] = {
                    "code": record.code,
                    "name": record.name,
                    "search_key": fold(record.name),
                    "level": record.level,
                    "unit_type": record.unit_type,
                    "parent_id": None if parent is None else ids[parent],
                    "province_id": None if parent is None else province_of[parent],
                    "depth": level_depth,
                    "lat": record.lat,
                    "lon": record.lon,
                    "dataset": dataset,
                }
                old = stored.get(record.code)
                if old is None:
                    new_rows.append(values)
                    continue
                if record.level == "province":
                    values["province_id"] = old.id
                province_of[record.code] = values["province_id"]
                if any(getattr(old, f) != values[f] for f in _UNIT_FIELDS):
                    changes.append({"id": old.id, **{f: values[f] for f in _UNIT_FIELDS}})
                else:
                    unchanged += 1
            new_ids = await _insert_returning_ids(session, Unit, new_rows)
            ids.update(new_ids)
            provinces = []
            for row in new_rows:
                code = row["code"]
                if row["level"] == "province":
                    province_of[code] = new_ids[code]
                    provinces.append({"id": new_ids[code], "province_id": new_ids[code]})
                else:
                    province_of[code] = row["province_id"]
            if provinces:
                await session.execute(update(Unit), provinces)
            if changes:
                await session.execute(update(Unit), changes)
            inserted += len(new_rows)
            updated += len(changes)
            done += len(by_depth[level_depth])
            notify("units", done, len(records))

        stored_sites = {
            row.code: row
            for row in (
                await session.execute(
                    select(Site.id, Site.code, *(getattr(Site, f) for f in _SITE_FIELDS))
                )
            ).all()
        }
        site_rows: list[dict[str, Any]] = []
        site_changes: list[dict[str, Any]] = []
        plans = plan_sites(records)
        for plan in plans:
            values = {
                "code": plan.code,
                "name": plan.name,
                "search_key": fold(plan.name),
                "unit_id": ids[plan.unit_code],
                "province_id": province_of[plan.unit_code],
                "kind": plan.kind,
            }
            old_site = stored_sites.get(plan.code)
            if old_site is None:
                site_rows.append(values)
            elif any(getattr(old_site, f) != values[f] for f in _SITE_FIELDS):
                site_changes.append({"id": old_site.id, **{f: values[f] for f in _SITE_FIELDS}})
        if site_rows:
            await session.execute(insert(Site), site_rows)
        if site_changes:
            await session.execute(update(Site), site_changes)
        notify("sites", len(plans), len(plans))
    return LoadResult(
        dataset=dataset,
        units_inserted=inserted,
        units_updated=updated,
        units_unchanged=unchanged,
        sites_inserted=len(site_rows),
        sites_updated=len(site_changes),
        sites_unchanged=len(plans) - len(site_rows) - len(site_changes),
        seconds=time.perf_counter() - started,
    )


async def load_builtin(db: Database, name: str, progress: ProgressFn | None = None) -> LoadResult:
    """Load one built-in dataset (``vn-2025``, ``vn-legacy``, ``south-19``)."""
    try:
        records = load_dataset(name)
    except ValueError as exc:
        raise Invalid(str(exc)) from exc
    return await load_units(db, records, dataset=name, progress=progress)


# --- queries --------------------------------------------------------------------------


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


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _rank(column: Any, key: str) -> Any:
    """0 exact name, 1 type + exact name ("phuong ben nghe" for "ben nghe"), 2 prefix, 3 other."""
    k = _escape_like(key)
    return case(
        (column == key, 0),
        (column.like(f"% {k}", escape="\\"), 1),
        (column.like(f"{k}%", escape="\\"), 2),
        else_=3,
    )


def _word_prefix_terms(column: Any, tokens: list[str]) -> list[Any]:
    """One condition per token: some word of the key starts with it.

    Word starts, not substrings: "uong" must not match every "phuong".
    """
    terms = []
    for token in tokens:
        t = _escape_like(token)
        terms.append(or_(column.like(f"{t}%", escape="\\"), column.like(f"% {t}%", escape="\\")))
    return terms


async def search(
    db: Database, query: str, *, limit: int = 20, province_scope: int | None = None
) -> list[SearchHit]:
    """Units and sites with a name word starting with each word of ``query``, or its code.

    Matching ignores case and diacritics (``phuong ben nghe`` and ``Bến Nghé`` both
    find Phường Bến Nghé): names are compared through their `diemcau.text.fold` keys.
    A code match ranks first, then exact names, names that are a unit type plus the
    query, names starting with the query, others; then shallower units first. Unit
    hits come before site hits; at most ``limit`` hits in all.
    """
    key = fold(query)
    tokens = key.split()
    if not tokens or limit <= 0:
        return []
    raw = query.strip()
    parent = aliased(Unit)
    province = aliased(Unit)
    unit_q = (
        select(Unit, parent.name, province.name)
        .outerjoin(parent, parent.id == Unit.parent_id)
        .outerjoin(province, province.id == Unit.province_id)
        .where(or_(Unit.code == raw, and_(*_word_prefix_terms(Unit.search_key, tokens))))
        .order_by(
            Unit.code != raw, _rank(Unit.search_key, key), Unit.depth, Unit.search_key, Unit.code
        )
        .limit(limit)
    )
    site_unit = aliased(Unit)
    site_q = (
        select(Site, site_unit, parent.name, province.name)
        .join(site_unit, site_unit.id == Site.unit_id)
        .outerjoin(parent, parent.id == site_unit.parent_id)
        .outerjoin(province, province.id == Site.province_id)
        .where(
            or_(
                Site.code == raw,
                and_(
                    *_word_prefix_terms(Site.search_key, tokens),
                    Site.search_key != site_unit.search_key,
                ),
            )
        )
        .order_by(Site.code != raw, _rank(Site.search_key, key), Site.search_key, Site.code)
        .limit(limit)
    )
    if province_scope is not None:
        unit_q = unit_q.where(Unit.province_id == province_scope)
        site_q = site_q.where(Site.province_id == province_scope)
    hits: list[SearchHit] = []
    async with db.session() as session:
        for unit, parent_name, province_name in (await session.execute(unit_q)).all():
            hits.append(
                SearchHit(
                    type="unit",
                    id=unit.id,
                    code=unit.code,
                    name=unit.name,
                    level=unit.level,
                    unit_type=unit.unit_type,
                    unit_code=unit.code,
                    parent_name=parent_name,
                    province_name=province_name,
                )
            )
        if len(hits) < limit:
            rows = (await session.execute(site_q.limit(limit - len(hits)))).all()
            for site, unit, parent_name, province_name in rows:
                hits.append(
                    SearchHit(
                        type="site",
                        id=site.id,
                        code=site.code,
                        name=site.name,
                        level=site.kind,
                        unit_type=unit.unit_type,
                        unit_code=unit.code,
                        parent_name=unit.name if parent_name is None else parent_name,
                        province_name=province_name,
                    )
                )
    return hits


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
