"""Which sites a directive reaches: areas (country, provinces, districts, any subtree)
and explicit sites, checked against the issuer's scope.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from diemcau.actors import Actor
from diemcau.directory.sites import SiteDirectory, SiteInfo
from diemcau.errors import Forbidden, Invalid
from diemcau.store import Unit

__all__ = ["Target", "resolve_target"]


class Target(BaseModel):
    """Which sites receive a directive; the union of every filter given.

    Area filters (country, provinces, districts, units) select every
    non-chair, non-revoked site in the area, optionally only of some `kinds`
    (e.g. ``["commune"]``); `sites` names sites explicitly.
    """

    model_config = ConfigDict(extra="forbid")

    country: bool = False
    provinces: list[str] = Field(default_factory=list, max_length=100)
    districts: list[str] = Field(default_factory=list, max_length=2000)
    units: list[str] = Field(default_factory=list, max_length=2000)
    sites: list[str] = Field(default_factory=list, max_length=20000)
    kinds: list[str] = Field(default_factory=list, max_length=8)

    def empty(self) -> bool:
        return not (self.country or self.provinces or self.districts or self.units or self.sites)


async def resolve_target(
    s: AsyncSession, sites: SiteDirectory, actor: Actor, target: Target
) -> list[tuple[int, int | None]]:
    """(site id, province id) of every site the target selects, checked against scope.

    Sites come from the directory's read model (reloaded first if the table moved);
    `s` reads the unit tree the area filters name.
    """
    if target.empty():
        raise Invalid(
            "target: choose the country, provinces, districts, units or sites",
            code="no_target",
        )
    if target.country and actor.province_id is not None:
        raise Forbidden(
            "target: a province officer may only direct sites of its own province",
            code="other_province",
        )
    await sites.refresh_if_changed()
    kinds = set(target.kinds)
    area = [
        site
        for site in await sites.all()
        if site.kind != "chair" and (not kinds or site.kind in kinds)
    ]
    found: dict[int, int | None] = {}

    def take(selected: Iterable[SiteInfo]) -> None:
        for site in selected:
            found[site.id] = site.province_id

    if target.country:
        take(area)
    if target.provinces:
        ids = set(await _unit_ids(s, "provinces", target.provinces, level="province"))
        take(site for site in area if site.province_id in ids)
    for field_name, codes, level in (
        ("districts", target.districts, "district"),
        ("units", target.units, None),
    ):
        if codes:
            roots = await _unit_ids(s, field_name, codes, level=level)
            subtree = set(await _subtree(s, roots))
            take(site for site in area if site.unit_id in subtree)
    if target.sites:
        wanted = sorted(set(target.sites))
        named = await sites.by_codes(wanted)
        # A site out of the actor's reach is answered like an unknown code: an officer
        # cannot tell which codes exist in other provinces.
        named = {c: s for c, s in named.items() if actor.may_touch(s.id, s.province_id)}
        missing = [c for c in wanted if c not in named]
        if missing:
            raise Invalid(
                f"target.sites: unknown site code '{missing[0]}'"
                + (" in your province" if actor.province_id is not None else ""),
                code="no_site",
            )
        for site in named.values():
            if site.kind == "chair":
                raise Invalid(f"target.sites: '{site.code}' is the chair site", code="chair")
        take(site for site in named.values() if not site.revoked)
    if actor.province_id is not None:
        outside = [sid for sid, pid in found.items() if pid != actor.province_id]
        if outside:
            raise Forbidden(
                "target: a province officer may only direct sites of its own province",
                code="other_province",
            )
    if not found:
        raise Invalid("target: no site matches", code="no_recipients")
    return sorted(found.items())


async def _unit_ids(
    s: AsyncSession, field_name: str, codes: Sequence[str], *, level: str | None
) -> list[int]:
    wanted = sorted(set(codes))
    rows = (
        await s.execute(select(Unit.id, Unit.code, Unit.level).where(Unit.code.in_(wanted)))
    ).all()
    by_code = {r.code: r for r in rows}
    for code in wanted:
        row = by_code.get(code)
        if row is None:
            raise Invalid(f"target.{field_name}: unknown unit code '{code}'", code="no_unit")
        if level is not None and row.level != level:
            raise Invalid(
                f"target.{field_name}: '{code}' is a {row.level}, not a {level}",
                code="wrong_level",
            )
    return [by_code[c].id for c in wanted]


async def _subtree(s: AsyncSession, roots: list[int]) -> list[int]:
    """The units below `roots` (inclusive), level by level."""
    seen = set(roots)
    frontier = list(roots)
    while frontier:
        children: list[int] = []
        for i in range(0, len(frontier), 900):
            q = select(Unit.id).where(Unit.parent_id.in_(frontier[i : i + 900]))
            children += [u for u in (await s.scalars(q)).all() if u not in seen]
        seen.update(children)
        frontier = children
    return sorted(seen)
