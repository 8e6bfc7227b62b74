"""Invitation rules: who a meeting (or a saved group) reaches, by area and filter.

A rule names the whole country, units (a province or a district: every site in its
subtree), explicit sites and saved groups, optionally filtered by site kind
("commune" only), minus excluded sites. It is stored as ids and resolved to the
concrete site ids when the meeting starts, so later directory edits do not change
who was in a past meeting.

Sites come from the directory's read model (`SiteDirectory`, in memory): a rule over
the whole country filters 10,795 records in memory instead of reading the ``sites``
table; only the unit subtree (a recursive query over ``units.parent_id``) and the
saved groups are read from the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from diemcau.directory.sites import SiteDirectory, SiteInfo
from diemcau.errors import Invalid, NotFound
from diemcau.meetings.models import SiteGroup
from diemcau.records import JsonObject, Record
from diemcau.store import Database
from diemcau.store.models import LEVELS, Unit

__all__ = ["Invitations", "InviteSpec", "SITE_KINDS"]

# Site kinds: "chair" (the central site) and the unit levels.
SITE_KINDS = ("chair", *LEVELS)
MAX_ITEMS = 20000


def _ids(value: object, what: str) -> tuple[int, ...]:
    values: Iterable[object] = value if isinstance(value, Iterable) else (value,)
    out: list[int] = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int):
            raise Invalid(f"{what} must be a list of integer ids, got {v!r}")
        out.append(v)
    if len(out) > MAX_ITEMS:
        raise Invalid(f"too many {what} ({len(out)} > {MAX_ITEMS})")
    return tuple(sorted(set(out)))


@dataclass(frozen=True)
class InviteSpec(Record):
    """Who is invited, as ids (see module docstring).

    Attributes:
        everyone: every non-revoked site of the directory (except the chair site).
        unit_ids: units whose whole subtree is invited (provinces, districts ...).
        site_ids: explicitly invited sites (never filtered by ``kinds``).
        group_ids: saved groups (`SiteGroup`) whose rules are merged in.
        kinds: keep only sites of these kinds from the areas, the groups' areas included
            (empty: all but "chair"); explicit sites are never filtered.
        exclude_site_ids: sites removed at the end, whatever added them.
    """

    everyone: bool = False
    unit_ids: tuple[int, ...] = ()
    site_ids: tuple[int, ...] = ()
    group_ids: tuple[int, ...] = ()
    kinds: tuple[str, ...] = ()
    exclude_site_ids: tuple[int, ...] = field(default=())

    def __post_init__(self) -> None:
        bad = [k for k in self.kinds if k not in SITE_KINDS]
        if bad:
            raise Invalid(f"unknown site kind {bad[0]!r}; use one of: {', '.join(SITE_KINDS)}")

    @property
    def is_empty(self) -> bool:
        return not (self.everyone or self.unit_ids or self.site_ids or self.group_ids)

    def to_json(self) -> JsonObject:
        """The rule as stored and replied: its fields, tuples as lists."""
        return self.as_dict()

    @classmethod
    def from_json(cls, data: Mapping[str, object] | None) -> InviteSpec:
        data = data or {}
        listed = data.get("kinds") or []
        if not isinstance(listed, list) or not all(isinstance(k, str) for k in listed):
            raise Invalid("kinds must be a list of site kinds")
        kinds = [k for k in listed if isinstance(k, str)]
        return cls(
            everyone=bool(data.get("everyone", False)),
            unit_ids=_ids(data.get("unit_ids") or [], "unit_ids"),
            site_ids=_ids(data.get("site_ids") or [], "site_ids"),
            group_ids=_ids(data.get("group_ids") or [], "group_ids"),
            kinds=tuple(sorted(set(kinds))),
            exclude_site_ids=_ids(data.get("exclude_site_ids") or [], "exclude_site_ids"),
        )


def _missing(wanted: Sequence[str], found: Iterable[str], what: str) -> NotFound:
    known = set(found)
    missing = [c for c in wanted if c not in known]
    more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
    return NotFound(f"{what} code {missing[0]!r} not found{more}", code=f"unknown_{what}")


def _clean_codes(codes: Sequence[str], what: str) -> list[str]:
    wanted = sorted({c.strip() for c in codes if c.strip()})
    if len(wanted) > MAX_ITEMS:
        raise Invalid(f"too many {what} codes ({len(wanted)} > {MAX_ITEMS})")
    return wanted


class Invitations:
    """Turns invitation rules into site ids, and codes as operators type them into rules.

    Args:
        db: the store (units and saved groups).
        sites: the directory's read model of sites.
    """

    def __init__(self, db: Database, sites: SiteDirectory) -> None:
        self.db = db
        self.sites = sites

    # --- codes → ids ------------------------------------------------------------------

    async def site_ids_of(self, codes: Sequence[str]) -> tuple[int, ...]:
        """The ids of sites named by code; an unknown code is refused with 404 naming it."""
        wanted = _clean_codes(codes, "site")
        if not wanted:
            return ()
        found = await self.sites.by_codes(wanted)
        if len(found) < len(wanted) and await self.sites.refresh_if_changed():
            found = await self.sites.by_codes(wanted)  # provisioned since the last load
        if len(found) < len(wanted):
            raise _missing(wanted, found, "site")
        return tuple(sorted(info.id for info in found.values()))

    async def _unit_ids_of(self, session: AsyncSession, codes: Sequence[str]) -> tuple[int, ...]:
        wanted = _clean_codes(codes, "unit")
        found: dict[str, int] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows = await session.execute(select(Unit.code, Unit.id).where(Unit.code.in_(chunk)))
            found.update({code: ident for code, ident in rows})
        if len(found) < len(wanted):
            raise _missing(wanted, found, "unit")
        return tuple(sorted(found.values()))

    async def spec_from_codes(
        self,
        *,
        everyone: bool = False,
        units: Sequence[str] = (),
        sites: Sequence[str] = (),
        groups: Sequence[int] = (),
        kinds: Sequence[str] = (),
        exclude_sites: Sequence[str] = (),
    ) -> InviteSpec:
        """Build a spec from unit and site codes (as an operator types them), checking each
        exists."""
        group_ids = _ids(groups, "groups")
        async with self.db.session() as s:
            if group_ids:
                known = set(
                    (await s.scalars(select(SiteGroup.id).where(SiteGroup.id.in_(group_ids)))).all()
                )
                missing = [g for g in group_ids if g not in known]
                if missing:
                    raise NotFound(f"site group {missing[0]} not found", code="unknown_group")
            unit_ids = await self._unit_ids_of(s, units)
        return InviteSpec(
            everyone=everyone,
            unit_ids=unit_ids,
            site_ids=await self.site_ids_of(sites),
            group_ids=group_ids,
            kinds=tuple(sorted(set(kinds))),
            exclude_site_ids=await self.site_ids_of(exclude_sites),
        )

    # --- rule → ids -------------------------------------------------------------------

    async def resolve(self, spec: InviteSpec, session: AsyncSession | None = None) -> list[int]:
        """The sorted ids of the non-revoked sites `spec` invites (groups one level deep).

        Args:
            session: read units and groups in the caller's unit of work (a meeting's
                start stores the result in the same transaction); a new one if None.
        """
        await self.sites.refresh_if_changed()  # one aggregate row unless sites moved
        if session is not None:
            return await self._resolve(session, spec)
        async with self.db.session() as s:
            return await self._resolve(s, spec)

    async def _resolve(self, session: AsyncSession, spec: InviteSpec) -> list[int]:
        result = await self._area_sites(session, spec)
        if spec.site_ids:
            found = await self.sites.by_ids(spec.site_ids)
            result.update(i for i, info in found.items() if not info.revoked)
        if spec.group_ids:
            groups = (
                await session.scalars(select(SiteGroup).where(SiteGroup.id.in_(spec.group_ids)))
            ).all()
            if len(groups) != len(spec.group_ids):
                raise NotFound("a saved site group of this invitation no longer exists")
            for group in groups:
                result.update(await self._resolve(session, _narrowed(group, spec)))
        result.difference_update(spec.exclude_site_ids)
        return sorted(result)

    async def _area_sites(self, session: AsyncSession, spec: InviteSpec) -> set[int]:
        if not (spec.everyone or spec.unit_ids):
            return set()
        kinds = spec.kinds

        def wanted(info: SiteInfo) -> bool:
            return info.kind in kinds if kinds else info.kind != "chair"

        every = await self.sites.all()  # non-revoked only
        if spec.everyone:
            return {info.id for info in every if wanted(info)}
        # Every unit in the chosen subtrees, whatever the depth (province → district →
        # commune in legacy trees; province → commune in the 2025 tree).
        tree = select(Unit.id).where(Unit.id.in_(spec.unit_ids)).cte("subtree", recursive=True)
        tree = tree.union(select(Unit.id).where(Unit.parent_id == tree.c.id))
        units = set((await session.scalars(select(tree.c.id))).all())
        return {info.id for info in every if info.unit_id in units and wanted(info)}


def _narrowed(group: SiteGroup, spec: InviteSpec) -> InviteSpec:
    """A saved group's rule, narrowed by the meeting's kind filter.

    Saved groups hold areas and sites only; nested groups are refused when saving, and
    ignored here, so a rule can never loop. The meeting's kind filter narrows the
    group's areas too ("communes of the 19 southern provinces"); the group's explicit
    sites stay as listed.
    """
    inner = InviteSpec.from_json(group.spec)
    kinds = inner.kinds
    if spec.kinds:
        kinds = tuple(k for k in kinds if k in spec.kinds) if kinds else spec.kinds
    no_area = bool(spec.kinds) and not kinds  # the two filters exclude each other
    return InviteSpec(
        everyone=inner.everyone and not no_area,
        unit_ids=() if no_area else inner.unit_ids,
        site_ids=inner.site_ids,
        kinds=kinds,
        exclude_site_ids=inner.exclude_site_ids,
    )
