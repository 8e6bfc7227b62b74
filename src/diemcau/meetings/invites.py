"""Invitation rules: who a meeting (or a saved group) reaches, by area and filter.

A rule names the whole country, units (a province or a district: every site in its
subtree), explicit sites and saved groups, optionally filtered by site kind
("commune" only), minus excluded sites. It is stored as ids and resolved to the
concrete site ids when the meeting starts, so later directory edits do not change
who was in a past meeting.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from diemcau.errors import Invalid, NotFound
from diemcau.meetings.models import SiteGroup
from diemcau.store.models import LEVELS, Site, Unit

__all__ = ["InviteSpec", "SITE_KINDS", "resolve_sites", "spec_from_codes"]

# Site kinds: "chair" (the central site) and the unit levels.
SITE_KINDS = ("chair", *LEVELS)
MAX_ITEMS = 20000


def _ids(values: Iterable[Any], what: str) -> tuple[int, ...]:
    out: list[int] = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int):
            raise Invalid(f"{what} must be a list of integer ids, got {v!r}")
        out.append(v)
    if len(out) > MAX_ITEMS:
        raise Invalid(f"too many {what} ({len(out)} > {MAX_ITEMS})")
    return tuple(sorted(set(out)))


@dataclass(frozen=True)
class InviteSpec:
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

    def to_json(self) -> dict[str, Any]:
        return {
            "everyone": self.everyone,
            "unit_ids": list(self.unit_ids),
            "site_ids": list(self.site_ids),
            "group_ids": list(self.group_ids),
            "kinds": list(self.kinds),
            "exclude_site_ids": list(self.exclude_site_ids),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> InviteSpec:
        data = data or {}
        kinds = data.get("kinds") or []
        if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
            raise Invalid("kinds must be a list of site kinds")
        return cls(
            everyone=bool(data.get("everyone", False)),
            unit_ids=_ids(data.get("unit_ids") or [], "unit_ids"),
            site_ids=_ids(data.get("site_ids") or [], "site_ids"),
            group_ids=_ids(data.get("group_ids") or [], "group_ids"),
            kinds=tuple(sorted(set(kinds))),
            exclude_site_ids=_ids(data.get("exclude_site_ids") or [], "exclude_site_ids"),
        )


async def _codes_to_ids(
    session: AsyncSession, model: type[Unit] | type[Site], codes: Sequence[str], what: str
) -> tuple[int, ...]:
    wanted = sorted({c.strip() for c in codes if c.strip()})
    if not wanted:
        return ()
    if len(wanted) > MAX_ITEMS:
        raise Invalid(f"too many {what} codes ({len(wanted)} > {MAX_ITEMS})")
    found: dict[str, int] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = await session.execute(select(model.code, model.id).where(model.code.in_(chunk)))
        found.update({code: ident for code, ident in rows})
    missing = [c for c in wanted if c not in found]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise NotFound(f"{what} code {missing[0]!r} not found{more}", code=f"unknown_{what}")
    return tuple(sorted(found.values()))


async def spec_from_codes(
    session: AsyncSession,
    *,
    everyone: bool = False,
    units: Sequence[str] = (),
    sites: Sequence[str] = (),
    groups: Sequence[int] = (),
    kinds: Sequence[str] = (),
    exclude_sites: Sequence[str] = (),
) -> InviteSpec:
    """Build a spec from unit and site codes (as an operator types them), checking each exists."""
    group_ids = _ids(groups, "groups")
    if group_ids:
        known = set(
            (await session.scalars(select(SiteGroup.id).where(SiteGroup.id.in_(group_ids)))).all()
        )
        missing = [g for g in group_ids if g not in known]
        if missing:
            raise NotFound(f"site group {missing[0]} not found", code="unknown_group")
    return InviteSpec(
        everyone=everyone,
        unit_ids=await _codes_to_ids(session, Unit, units, "unit"),
        site_ids=await _codes_to_ids(session, Site, sites, "site"),
        group_ids=group_ids,
        kinds=tuple(sorted(set(kinds))),
        exclude_site_ids=await _codes_to_ids(session, Site, exclude_sites, "site"),
    )


async def _area_sites(session: AsyncSession, spec: InviteSpec) -> set[int]:
    kinds = spec.kinds
    if not (spec.everyone or spec.unit_ids):
        return set()
    stmt = select(Site.id).where(Site.revoked.is_(False))
    if kinds:
        stmt = stmt.where(Site.kind.in_(kinds))
    else:
        stmt = stmt.where(Site.kind != "chair")
    if not spec.everyone:
        # Every unit in the chosen subtrees, whatever the depth (province → district →
        # commune in legacy trees; province → commune in the 2025 tree).
        tree = select(Unit.id).where(Unit.id.in_(spec.unit_ids)).cte("subtree", recursive=True)
        tree = tree.union(select(Unit.id).where(Unit.parent_id == tree.c.id))
        stmt = stmt.where(Site.unit_id.in_(select(tree.c.id)))
    return set((await session.scalars(stmt)).all())


async def resolve_sites(session: AsyncSession, spec: InviteSpec) -> list[int]:
    """The sorted ids of the non-revoked sites `spec` invites (groups one level deep)."""
    result = await _area_sites(session, spec)
    if spec.site_ids:
        for start in range(0, len(spec.site_ids), 500):
            chunk = spec.site_ids[start : start + 500]
            result.update(
                (
                    await session.scalars(
                        select(Site.id).where(Site.id.in_(chunk), Site.revoked.is_(False))
                    )
                ).all()
            )
    if spec.group_ids:
        groups = (
            await session.scalars(select(SiteGroup).where(SiteGroup.id.in_(spec.group_ids)))
        ).all()
        if len(groups) != len(spec.group_ids):
            raise NotFound("a saved site group of this invitation no longer exists")
        for group in groups:
            inner = InviteSpec.from_json(group.spec)
            # Saved groups hold areas and sites only; nested groups are refused when
            # saving, and ignored here, so a rule can never loop.
            # The meeting's kind filter narrows the group's areas too ("communes of the
            # 19 southern provinces"); the group's explicit sites stay as listed.
            kinds = inner.kinds
            if spec.kinds:
                kinds = tuple(k for k in kinds if k in spec.kinds) if kinds else spec.kinds
            no_area = bool(spec.kinds) and not kinds  # the two filters exclude each other
            inner = InviteSpec(
                everyone=inner.everyone and not no_area,
                unit_ids=() if no_area else inner.unit_ids,
                site_ids=inner.site_ids,
                kinds=kinds,
                exclude_site_ids=inner.exclude_site_ids,
            )
            result.update(await resolve_sites(session, inner))
    result.difference_update(spec.exclude_site_ids)
    return sorted(result)
