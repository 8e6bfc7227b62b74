"""Shared helpers for the meetings tests: a small legacy tree, staff, a fake hub and clock.

The tree (three levels, like ``vn-legacy``):

    VN (country)
    ├── P1 (province) ── site P1-S (kind province)
    │   ├── D1 (district) ── site D1-S (kind district)
    │   │   ├── C1 ── site C1-S      ├── C2 ── site C2-S
    │   └── D2 (district)
    │       └── C3 ── site C3-S
    └── P2 (province)
        └── D3 (district)
            └── C4 ── site C4-S
    plus the central site CHAIR-S (kind chair) on VN.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from diemcau.accounts.service import SitePrincipal, StaffPrincipal
from diemcau.actors import Actor
from diemcau.meetings.ports import MessageHandler, PresenceListener
from diemcau.store import Database
from diemcau.store.models import Site, StaffUser, Unit


class FakeClock:
    """A wall clock the test moves by hand."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@dataclass
class Change:
    site_id: int
    old: str
    new: str
    reason: str = ""
    at: float = 0.0


@dataclass
class FakeHub:
    """Records what the service sends; the test plays the sites' side."""

    online: set[int] = field(default_factory=set)
    handlers: dict[str, MessageHandler] = field(default_factory=dict)
    listeners: list[PresenceListener] = field(default_factory=list)
    broadcasts: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    sends: list[tuple[tuple[int, ...], str, dict[str, Any], str | None]] = field(
        default_factory=list
    )
    follows: dict[str, set[int]] = field(default_factory=dict)
    staff_events: list[tuple[str, dict[str, Any], int | None]] = field(default_factory=list)

    async def send(
        self,
        site_ids: Collection[int],
        kind: str,
        body: Mapping[str, Any],
        *,
        msg_id: str | None = None,
        durable: bool = True,
    ) -> None:
        self.sends.append((tuple(site_ids), kind, dict(body), msg_id))

    async def broadcast(
        self,
        stream: str,
        kind: str,
        body: Mapping[str, Any],
        *,
        durable: bool = True,
        msg_id: str | None = None,
    ) -> int:
        self.broadcasts.append((stream, kind, dict(body)))
        return len(self.broadcasts)

    async def follow(self, stream: str, site_ids: Collection[int]) -> None:
        self.follows.setdefault(stream, set()).update(site_ids)

    async def unfollow(self, stream: str, site_ids: Collection[int] | None = None) -> None:
        if site_ids is None:
            self.follows.pop(stream, None)
        else:
            self.follows.get(stream, set()).difference_update(site_ids)

    def on_message(self, kind: str, handler: MessageHandler) -> None:
        self.handlers[kind] = handler

    def is_online(self, site_id: int) -> bool:
        return site_id in self.online

    def add_listener(self, callback: PresenceListener) -> None:
        self.listeners.append(callback)

    async def publish_staff_event(
        self, kind: str, body: Mapping[str, Any], *, province_id: int | None = None
    ) -> None:
        self.staff_events.append((kind, dict(body), province_id))

    async def set_online(self, site_id: int, online: bool) -> None:
        old = "online" if site_id in self.online else "offline"
        if online:
            self.online.add(site_id)
        else:
            self.online.discard(site_id)
        change = Change(site_id, old, "online" if online else "offline")
        for cb in self.listeners:
            result = cb(change)
            if result is not None:
                await result

    async def message(
        self, site: SitePrincipal, kind: str, body: Mapping[str, Any]
    ) -> Mapping[str, Any] | None:
        return await self.handlers[kind](site, body)

    def kinds(self, stream: str) -> list[str]:
        return [k for s, k, _ in self.broadcasts if s == stream]


@dataclass
class World:
    """Ids of the tree; sites and staff as the hub and the API authenticate them
    (principals) and as services take them (actors)."""

    units: dict[str, int]
    sites: dict[str, SitePrincipal]
    staff: dict[str, StaffPrincipal]

    def site_ids(self, *codes: str) -> list[int]:
        return sorted(self.sites[c].site_id for c in codes)

    def actor(self, username: str) -> Actor:
        p = self.staff[username]
        return Actor.for_staff(p.username, p.role, p.province_id, user_id=p.user_id)

    def site(self, code: str) -> Actor:
        p = self.sites[code]
        return Actor.for_site(p.site_id, p.code, p.province_id)


_UNITS = (
    # code, level, parent, province
    ("VN", "country", None, None),
    ("P1", "province", "VN", "P1"),
    ("P2", "province", "VN", "P2"),
    ("D1", "district", "P1", "P1"),
    ("D2", "district", "P1", "P1"),
    ("D3", "district", "P2", "P2"),
    ("C1", "commune", "D1", "P1"),
    ("C2", "commune", "D1", "P1"),
    ("C3", "commune", "D2", "P1"),
    ("C4", "commune", "D3", "P2"),
)
_NAMES = {"P1": "Tỉnh Một", "P2": "Tỉnh Hai"}
_SITES = (
    ("CHAIR-S", "VN", "chair"),
    ("P1-S", "P1", "province"),
    ("D1-S", "D1", "district"),
    ("C1-S", "C1", "commune"),
    ("C2-S", "C2", "commune"),
    ("C3-S", "C3", "commune"),
    ("C4-S", "C4", "commune"),
)
_STAFF = (
    ("chair", "chair", None),
    ("chair2", "chair", None),
    ("admin", "admin", None),
    ("operator", "operator", None),
    ("officer1", "province_officer", "P1"),
)


async def build_world(db: Database) -> World:
    """Insert the tree above, its sites and staff users; return their ids as principals."""
    units: dict[str, int] = {}
    sites: dict[str, SitePrincipal] = {}
    staff: dict[str, StaffPrincipal] = {}
    async with db.session() as s:
        for code, level, parent, _ in _UNITS:
            row = Unit(
                code=code,
                name=_NAMES.get(code, f"Đơn vị {code}"),
                search_key=code.lower(),
                level=level,
                unit_type=level,
                parent_id=units.get(parent) if parent else None,
                province_id=None,
                depth=("country", "province", "district", "commune").index(level),
                dataset="test",
            )
            s.add(row)
            await s.flush()
            units[code] = row.id
        for code, _, _, province in _UNITS:
            if province:
                unit = await s.get(Unit, units[code])
                assert unit is not None
                unit.province_id = units[province]
        await s.flush()
        province_of = {code: (units[p] if p else None) for code, _, _, p in _UNITS}
        for code, unit_code, kind in _SITES:
            site = Site(
                code=code,
                name=f"Điểm cầu {code}",
                search_key=code.lower(),
                unit_id=units[unit_code],
                province_id=province_of[unit_code],
                kind=kind,
                credential_version=1,
                revoked=False,
            )
            s.add(site)
            await s.flush()
            sites[code] = SitePrincipal(
                site.id, code, site.name, site.province_id, site.unit_id, kind, 1
            )
        for username, role, province in _STAFF:
            user = StaffUser(
                username=username,
                display_name=username,
                password_hash="x",
                role=role,
                province_id=units[province] if province else None,
                disabled=False,
            )
            s.add(user)
            await s.flush()
            staff[username] = StaffPrincipal(
                user.id, username, role, units[province] if province else None
            )
    return World(units, sites, staff)
