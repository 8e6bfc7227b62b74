"""Loading a tree of units into the store: inserted or updated by code, in bulk.

Loading writes in bulk (one multi-row INSERT or executemany UPDATE per tree level)
because the whole country is 10,795 units plus as many sites: one ORM object per
row would take tens of seconds where this takes a few. A load is idempotent and
updates by code: it inserts new units and sites, updates changed ones, leaves
equal ones and units absent from the input alone, and never touches a site's
credential columns.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypedDict

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from diemcau.directory.datasets import load_dataset
from diemcau.directory.records import UnitRecord, plan_sites
from diemcau.directory.schemas import LoadResult
from diemcau.errors import Conflict, Invalid
from diemcau.store import Database
from diemcau.store.models import Site, Unit
from diemcau.text import fold

__all__ = ["ProgressFn", "load_builtin", "load_units"]

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


# One row of a bulk INSERT or executemany UPDATE: column name -> value.
_Columns = dict[str, object]


class _UnitRow(TypedDict):
    """A new unit's columns, as the bulk INSERT writes them."""

    code: str
    name: str
    search_key: str
    level: str
    unit_type: str
    parent_id: int | None
    province_id: int | None
    depth: int
    lat: float | None
    lon: float | None
    dataset: str


class _StoredUnit(Protocol):
    """What a load reads back of a stored unit (with the `_UNIT_FIELDS`)."""

    id: int
    parent_id: int | None
    province_id: int | None
    depth: int
    dataset: str


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
    session: AsyncSession, model: type[Unit] | type[Site], rows: Sequence[Mapping[str, object]]
) -> dict[str, int]:
    if not rows:
        return {}
    result = await session.execute(insert(model).returning(model.id, model.code), rows)
    return {code: ident for ident, code in result.all()}


@dataclass
class _UnitWrite:
    """The state of a load's unit pass: ids and provinces by code, and the tallies."""

    ids: dict[str, int]
    province_of: dict[str, int | None]
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    done: int = 0
    new_rows: list[_UnitRow] = field(default_factory=list)
    changes: list[_Columns] = field(default_factory=list)


async def _stored_units(session: AsyncSession) -> dict[str, _StoredUnit]:
    return {
        row.code: row
        for row in (
            await session.execute(
                select(Unit.id, Unit.code, *(getattr(Unit, f) for f in _UNIT_FIELDS)).order_by(
                    Unit.id
                )
            )
        ).all()
    }


def _refuse_mixing(
    records: Sequence[UnitRecord], stored: Mapping[str, _StoredUnit], dataset: str
) -> None:
    """Refuse a second root, or a code already loaded from an incompatible dataset."""
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


def _plan_level(
    state: _UnitWrite,
    records: Sequence[UnitRecord],
    stored: Mapping[str, _StoredUnit],
    dataset: str,
    level_depth: int,
) -> None:
    """Sort one tree level's records into new rows and changes of stored units."""
    state.new_rows, state.changes = [], []
    for record in records:
        parent = record.parent_code
        old = stored.get(record.code)
        province_id = None if parent is None else state.province_of[parent]
        if old is not None and record.level == "province":
            province_id = old.id
        values: _UnitRow = {
            "code": record.code,
            "name": record.name,
            "search_key": fold(record.name),
            "level": record.level,
            "unit_type": record.unit_type,
            "parent_id": None if parent is None else state.ids[parent],
            "province_id": province_id,
            "depth": level_depth,
            "lat": record.lat,
            "lon": record.lon,
            "dataset": dataset,
        }
        if old is None:
            state.new_rows.append(values)
            continue
        state.province_of[record.code] = province_id
        columns: Mapping[str, object] = values
        if any(getattr(old, f) != columns[f] for f in _UNIT_FIELDS):
            state.changes.append({"id": old.id, **{f: columns[f] for f in _UNIT_FIELDS}})
        else:
            state.unchanged += 1


async def _write_level(session: AsyncSession, state: _UnitWrite) -> None:
    """Insert a level's new units (a province is its own province), update changed ones."""
    new_ids = await _insert_returning_ids(session, Unit, state.new_rows)
    state.ids.update(new_ids)
    provinces = []
    for row in state.new_rows:
        code = row["code"]
        if row["level"] == "province":
            state.province_of[code] = new_ids[code]
            provinces.append({"id": new_ids[code], "province_id": new_ids[code]})
        else:
            state.province_of[code] = row["province_id"]
    if provinces:
        await session.execute(update(Unit), provinces)
    if state.changes:
        await session.execute(update(Unit), state.changes)
    state.inserted += len(state.new_rows)
    state.updated += len(state.changes)


async def _write_units(
    session: AsyncSession,
    records: Sequence[UnitRecord],
    dataset: str,
    notify: ProgressFn,
) -> _UnitWrite:
    """Every unit of `records`, level by level from the root (parents get ids first)."""
    stored = await _stored_units(session)
    depth = _depths(records, {code: row.depth for code, row in stored.items()})
    _refuse_mixing(records, stored, dataset)
    state = _UnitWrite(
        ids={code: row.id for code, row in stored.items()},
        province_of={code: row.province_id for code, row in stored.items()},
    )
    by_depth: dict[int, list[UnitRecord]] = defaultdict(list)
    for record in records:
        by_depth[depth[record.code]].append(record)
    for level_depth in sorted(by_depth):
        _plan_level(state, by_depth[level_depth], stored, dataset, level_depth)
        await _write_level(session, state)
        state.done += len(by_depth[level_depth])
        notify("units", state.done, len(records))
    return state


async def _write_sites(
    session: AsyncSession, records: Sequence[UnitRecord], units: _UnitWrite
) -> tuple[int, int, int]:
    """The sites of `records` inserted or updated by code: (planned, inserted, updated)."""
    stored_sites = {
        row.code: row
        for row in (
            await session.execute(
                select(Site.id, Site.code, *(getattr(Site, f) for f in _SITE_FIELDS))
            )
        ).all()
    }
    site_rows: list[_Columns] = []
    site_changes: list[_Columns] = []
    plans = plan_sites(records)
    for plan in plans:
        values: _Columns = {
            "code": plan.code,
            "name": plan.name,
            "search_key": fold(plan.name),
            "unit_id": units.ids[plan.unit_code],
            "province_id": units.province_of[plan.unit_code],
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
    return len(plans), len(site_rows), len(site_changes)


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
        units = await _write_units(session, records, dataset, notify)
        planned, sites_inserted, sites_updated = await _write_sites(session, records, units)
        notify("sites", planned, planned)
    return LoadResult(
        dataset=dataset,
        units_inserted=units.inserted,
        units_updated=units.updated,
        units_unchanged=units.unchanged,
        sites_inserted=sites_inserted,
        sites_updated=sites_updated,
        sites_unchanged=planned - sites_inserted - sites_updated,
        seconds=time.perf_counter() - started,
    )


async def load_builtin(db: Database, name: str, progress: ProgressFn | None = None) -> LoadResult:
    """Load one built-in dataset (``vn-2025``, ``vn-legacy``, ``south-19``)."""
    try:
        records = load_dataset(name)
    except ValueError as exc:
        raise Invalid(str(exc)) from exc
    return await load_units(db, records, dataset=name, progress=progress)
