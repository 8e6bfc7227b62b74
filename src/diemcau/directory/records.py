"""The typed unit record every tree source produces, and the sites it implies.

Built-in datasets and CSV files both become a list of `UnitRecord`; the store
loader only ever sees this shape. The site plan lives here too, because the CSV
validator must refuse a file whose site codes would collide before anything is
written, using the same rule the loader applies.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = [
    "CHAIR_SITE_CODE",
    "CHAIR_SITE_NAME",
    "CHAIR_KIND",
    "SitePlan",
    "UnitRecord",
    "plan_sites",
    "sites_for",
]

# The central chair site (điểm cầu Trung ương) is bound to the tree's root unit.
CHAIR_SITE_CODE = "TW"
CHAIR_SITE_NAME = "Điểm cầu Trung ương"
CHAIR_KIND = "chair"


@dataclass(frozen=True, slots=True)
class UnitRecord:
    """One administrative unit as read from a dataset or a CSV row.

    Attributes:
        code: official code, unique in the tree ("79", "760", "26740"; "VN" for the root).
        name: full NFC name with its type prefix ("Phường Bến Nghé").
        level: "country", "province", "district" or "commune".
        unit_type: the official kind in Vietnamese ("Phường", "Xã", "Quận", "Tỉnh" ...).
        parent_code: the parent unit's code; None for the root.
        lat: centroid latitude in degrees, if known.
        lon: centroid longitude in degrees, if known.
        site_names: names of extra sites bound to the unit, beyond its default site.
    """

    code: str
    name: str
    level: str
    unit_type: str = ""
    parent_code: str | None = None
    lat: float | None = None
    lon: float | None = None
    site_names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SitePlan:
    """A site the loader creates for a unit: its code, name and kind."""

    code: str
    name: str
    kind: str
    unit_code: str


def sites_for(record: UnitRecord) -> Iterator[SitePlan]:
    """The sites of one unit: its default site, then one per extra site name.

    The root's default site is the central chair site (code ``TW``). Extra sites
    take the codes ``<unit code>-2``, ``-3`` ... in the order they are listed, so a
    re-import of the same file maps each name to the same site.
    """
    if record.parent_code is None:
        yield SitePlan(CHAIR_SITE_CODE, CHAIR_SITE_NAME, CHAIR_KIND, record.code)
    else:
        yield SitePlan(record.code, record.name, record.level, record.code)
    for index, name in enumerate(record.site_names, start=2):
        yield SitePlan(f"{record.code}-{index}", name, record.level, record.code)


def plan_sites(records: Iterable[UnitRecord]) -> list[SitePlan]:
    """Every site the records imply, in record order."""
    return [site for record in records for site in sites_for(record)]
