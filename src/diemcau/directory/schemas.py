"""Read models the directory service returns: typed, immutable, JSON-ready.

Callers (the API, the CLI, other services) get these instead of ORM objects, so
no lazy load can fire outside a session and the HTTP layer can hand them to
FastAPI as they are (they double as response schemas in the OpenAPI document).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = [
    "LoadResult",
    "SearchHit",
    "SiteDetail",
    "SiteRef",
    "UnitDetail",
    "UnitNode",
    "UnitRef",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class UnitRef(_Frozen):
    """Enough of a unit to name and link it."""

    id: int
    code: str
    name: str
    level: str


class SiteRef(_Frozen):
    """Enough of a site to name and link it."""

    id: int
    code: str
    name: str
    kind: str


class UnitNode(_Frozen):
    """One unit in a tree listing, with the counts a tree view shows beside it.

    Attributes:
        child_count: direct child units.
        site_total: sites bound to this unit and to every unit below it.
        sites_by_kind: the same sites by kind ("commune": 273, "district": 22 ...);
            a site's kind is its unit's level, or "chair" for the central site.
    """

    id: int
    code: str
    name: str
    level: str
    unit_type: str
    lat: float | None
    lon: float | None
    child_count: int
    site_total: int
    sites_by_kind: dict[str, int]


class UnitDetail(UnitNode):
    """One unit with its place in the tree and its own sites."""

    depth: int
    dataset: str
    ancestors: list[UnitRef]
    province: UnitRef | None
    sites: list[SiteRef]


class SiteDetail(_Frozen):
    """One site, its unit and its credential state (never the credential itself)."""

    id: int
    code: str
    name: str
    kind: str
    unit: UnitRef
    ancestors: list[UnitRef]
    province: UnitRef | None
    lat: float | None
    lon: float | None
    provisioned: bool
    revoked: bool
    credential_version: int
    credential_issued_at: datetime | None
    created_at: datetime


class SearchHit(_Frozen):
    """A unit or site matching a search.

    Unit hits come first. A unit's default site has the unit's code and name, so it
    is not listed again as a separate site hit; sites with their own names (the
    central chair site, extra sites from a CSV) are.

    Attributes:
        type: "unit" or "site".
        level: the unit's level, or the site's kind.
        unit_code: the unit itself for a unit hit, the site's unit for a site hit.
        parent_name: the parent unit's name, to tell apart namesakes ("Phường 1").
        province_name: the province the hit lies in, if any.
    """

    type: Literal["unit", "site"]
    id: int
    code: str
    name: str
    level: str
    unit_type: str
    unit_code: str
    parent_name: str | None
    province_name: str | None


class LoadResult(_Frozen):
    """What one load did; a repeated load of the same records reports no change."""

    dataset: str
    units_inserted: int
    units_updated: int
    units_unchanged: int
    sites_inserted: int
    sites_updated: int
    sites_unchanged: int
    seconds: float

    @property
    def changed(self) -> bool:
        return bool(
            self.units_inserted + self.units_updated + self.sites_inserted + self.sites_updated
        )
