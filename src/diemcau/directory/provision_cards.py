"""The per-province sheet model: a card with a fresh secret for each site a run issues to.

A run issues to every site in scope that is not revoked and has no credential yet
(or to all of them with ``rotate``); each card carries the site's name, where it
lies, its join link and code, and the digest to store. Cards are grouped by
province, the national level being a group of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from diemcau.accounts.join_codes import join_code
from diemcau.accounts.join_codes import join_link as service_join_link
from diemcau.security import Key, new_site_secret, site_secret_digest

__all__ = [
    "Card",
    "CardPlan",
    "ProvinceSheet",
    "SiteRow",
    "UnitRow",
    "join_link",
    "plan_cards",
]


class _Named(Protocol):
    """A unit or site row: its id, code and name."""

    id: int
    code: str
    name: str


class UnitRow(_Named, Protocol):
    """A unit as a provisioning run reads it (where a site lies, its province)."""

    level: str
    unit_type: str
    parent_id: int | None


class SiteRow(_Named, Protocol):
    """A site as a provisioning run reads it (whether it gets a new secret)."""

    unit_id: int
    province_id: int | None
    secret_digest: str | None
    revoked: bool
    credential_version: int


@dataclass(frozen=True)
class ProvinceSheet:
    """The files written for one province (or for the national level)."""

    province_code: str
    province_name: str
    sites: int
    csv_path: Path
    html_path: Path
    xlsx_path: Path | None = None


@dataclass
class Card:
    """One site's card: what is printed, and what is stored once every file is written."""

    code: str
    name: str
    unit_type: str
    parents: str
    province: str
    link: str
    join: str
    site_id: int
    digest: str
    version: int
    svg: str = ""


@dataclass(frozen=True)
class CardPlan:
    """What a run does: cards by province unit id (with that unit's row), and the rest.

    Attributes:
        groups: ``{unit id: (unit row, cards)}``, cards in tree order (shallow first).
        kept: sites in scope that already had a credential and keep it.
        revoked: revoked sites in scope, left revoked.
    """

    groups: dict[int, tuple[UnitRow, list[Card]]]
    kept: int
    revoked: int

    @property
    def cards(self) -> list[Card]:
        return [card for _, cards in self.groups.values() for card in cards]


def join_link(base_url: str, site_code: str, secret: str) -> str:
    """The join link of a site's secret (see `diemcau.accounts.service.join_link`)."""
    return service_join_link(base_url, join_code(site_code, secret))


class _Tree:
    """Unit names and parents, loaded once, to describe where each site lies."""

    def __init__(self, rows: Sequence[UnitRow]) -> None:
        self.units: dict[int, UnitRow] = {row.id: row for row in rows}

    def parents(self, unit_id: int) -> str:
        """Names of the ancestors below the country, nearest first ("Quận 1, TP HCM")."""
        names: list[str] = []
        unit = self.units.get(unit_id)
        seen = 0
        while unit is not None and unit.parent_id is not None and seen < 64:
            unit = self.units.get(unit.parent_id)
            if unit is None or unit.level == "country":
                break
            names.append(unit.name)
            seen += 1
        return ", ".join(names)

    def root_of(self, unit_id: int) -> UnitRow:
        unit = self.units[unit_id]
        seen = 0
        while unit.parent_id is not None and unit.parent_id in self.units and seen < 64:
            unit = self.units[unit.parent_id]
            seen += 1
        return unit

    def depths(self) -> dict[int, int]:
        """Each unit's distance from its root."""
        depth: dict[int, int] = {}
        for uid in self.units:
            unit, d = self.units[uid], 0
            while unit.parent_id is not None and unit.parent_id in self.units and d < 64:
                unit, d = self.units[unit.parent_id], d + 1
            depth[uid] = d
        return depth


def plan_cards(
    unit_rows: Sequence[UnitRow],
    site_rows: Sequence[SiteRow],
    key: Key,
    base_url: str,
    rotate: bool,
) -> CardPlan:
    """Give each site to issue a fresh secret on a card, grouped by its province."""
    tree = _Tree(unit_rows)
    depth = tree.depths()
    revoked = sum(1 for r in site_rows if r.revoked)
    targets = [r for r in site_rows if not r.revoked and (rotate or r.secret_digest is None)]
    kept = len(site_rows) - revoked - len(targets)
    targets.sort(key=lambda r: (depth.get(r.unit_id, 0), r.code))

    groups: dict[int, tuple[UnitRow, list[Card]]] = {}
    for row in targets:
        group_unit = (
            tree.units[row.province_id]
            if row.province_id is not None and row.province_id in tree.units
            else tree.root_of(row.unit_id)
        )
        unit = tree.units.get(row.unit_id)
        secret = new_site_secret()
        card = Card(
            code=row.code,
            name=row.name,
            unit_type=unit.unit_type if unit is not None else "",
            parents=tree.parents(row.unit_id),
            province=group_unit.name,
            link=join_link(base_url, row.code, secret),
            join=join_code(row.code, secret),
            site_id=row.id,
            digest=site_secret_digest(key, secret),
            version=row.credential_version + 1,
        )
        groups.setdefault(group_unit.id, (group_unit, []))[1].append(card)
    return CardPlan(groups=groups, kept=kept, revoked=revoked)
