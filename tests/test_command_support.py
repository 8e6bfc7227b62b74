"""Shared helpers for the command-center tests: a tiny country and a fake clock and hub.

The directory is seeded straight into the store so these tests depend only on
the foundation tables, not on the directory importer.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from diemcau.store import Database, Site, Unit


@dataclass
class FakeClock:
    """A settable wall clock (seconds since the epoch)."""

    now: float = datetime(2026, 11, 26, 3, 0, tzinfo=UTC).timestamp()

    def __call__(self) -> float:
        return self.now

    def set(self, when: datetime) -> None:
        self.now = when.timestamp()

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeHub:
    """Records what the command center sends to sites and staff."""

    sent: list[tuple[list[int], str, dict[str, Any], str | None]] = field(default_factory=list)
    staff_events: list[tuple[str, dict[str, Any], int | None]] = field(default_factory=list)
    online: set[int] = field(default_factory=set)
    follows: dict[int, dict[str, int]] = field(default_factory=dict)
    handlers: dict[str, Any] = field(default_factory=dict)
    listeners: list[Any] = field(default_factory=list)

    async def send(
        self,
        site_ids: Collection[int],
        kind: str,
        body: Mapping[str, Any],
        *,
        msg_id: str | None = None,
        durable: bool = True,
    ) -> None:
        self.sent.append((sorted(site_ids), kind, dict(body), msg_id))

    async def publish_staff_event(
        self, kind: str, body: Mapping[str, Any], *, province_id: int | None = None
    ) -> None:
        self.staff_events.append((kind, dict(body), province_id))

    def is_online(self, site_id: int) -> bool:
        return site_id in self.online

    def streams_of(self, site_id: int) -> dict[str, int]:
        return dict(self.follows.get(site_id, {}))

    def on_message(self, kind: str, handler: Any) -> None:
        self.handlers[kind] = handler

    def add_listener(self, callback: Any) -> None:
        self.listeners.append(callback)

    def events(self, kind: str) -> list[tuple[str, dict[str, Any], int | None]]:
        return [e for e in self.staff_events if e[0] == kind]


@dataclass
class Country:
    """Ids of the seeded units and sites."""

    country: int
    provinces: dict[str, int]
    districts: dict[str, int]
    sites: dict[str, int]
    chair: int
    site_province: dict[str, int]


async def seed_country(db: Database) -> Country:
    """Two provinces: P1 (district D1 with communes A, B; commune C) and P2 (communes X, Y).

    Every commune has one site with the commune's code; the chair site is CHAIR.
    """
    async with db.session() as s:
        vn = Unit(
            code="VN",
            name="Việt Nam",
            search_key="viet nam",
            level="country",
            depth=0,
            dataset="test",
        )
        s.add(vn)
        await s.flush()
        provinces: dict[str, int] = {}
        for code, name in (("P1", "Tỉnh Một"), ("P2", "Tỉnh Hai")):
            u = Unit(
                code=code,
                name=name,
                search_key=name.lower(),
                level="province",
                parent_id=vn.id,
                depth=1,
                dataset="test",
            )
            s.add(u)
            await s.flush()
            u.province_id = u.id
            provinces[code] = u.id
        d1 = Unit(
            code="D1",
            name="Huyện Một",
            search_key="huyen mot",
            level="district",
            parent_id=provinces["P1"],
            province_id=provinces["P1"],
            depth=2,
            dataset="test",
        )
        s.add(d1)
        await s.flush()
        communes = {
            "A": (d1.id, provinces["P1"]),
            "B": (d1.id, provinces["P1"]),
            "C": (provinces["P1"], provinces["P1"]),
            "X": (provinces["P2"], provinces["P2"]),
            "Y": (provinces["P2"], provinces["P2"]),
        }
        sites: dict[str, int] = {}
        site_province: dict[str, int] = {}
        for code, (parent, prov) in communes.items():
            u = Unit(
                code=f"U{code}",
                name=f"Xã {code}",
                search_key=f"xa {code.lower()}",
                level="commune",
                parent_id=parent,
                province_id=prov,
                depth=3,
                dataset="test",
            )
            s.add(u)
            await s.flush()
            site = Site(
                code=code,
                name=f"Điểm cầu xã {code}",
                search_key=f"xa {code.lower()}",
                unit_id=u.id,
                province_id=prov,
                kind="commune",
            )
            s.add(site)
            await s.flush()
            sites[code] = site.id
            site_province[code] = prov
        chair = Site(
            code="CHAIR",
            name="Trung ương",
            search_key="trung uong",
            unit_id=vn.id,
            province_id=None,
            kind="chair",
        )
        s.add(chair)
        await s.flush()
        return Country(vn.id, provinces, {"D1": d1.id}, sites, chair.id, site_province)


def covid(**overrides: Any) -> dict[str, Any]:
    """A valid COVID-19 report, with some values replaced."""
    values: dict[str, Any] = {
        "new_cases": 3,
        "under_treatment": 10,
        "recovered": 1,
        "deaths": 0,
        "vaccine_doses": 100,
        "zone_level": "yellow",
        "distancing_order": False,
    }
    values.update(overrides)
    return values
