"""Shared parts of the inspection tests: a small tree, staff actors, fake presence and media.

The tree: Hà Nội (01) with communes 00004, 00008, 00091; Hồ Chí Minh City (79) with
26734, 26740; the central site TW on the country. The fakes record what the service
tells sites and asks of media; the test plays the site's side by calling the request
handlers the service registered.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from diemcau.accounts.service import SitePrincipal, create_staff
from diemcau.actors import Actor
from diemcau.audit import AuditQuery, AuditRecord, query_audit
from diemcau.directory import service
from diemcau.directory.records import UnitRecord
from diemcau.directory.sites import SiteDirectory
from diemcau.errors import NotFound
from diemcau.inspection.ports import Grant, SiteRequestHandler
from diemcau.inspection.service import InspectionService
from diemcau.store import Database
from diemcau.store.models import Site, Unit

TREE = (
    UnitRecord("VN", "Việt Nam", "country"),
    UnitRecord("01", "Thành phố Hà Nội", "province", parent_code="VN"),
    UnitRecord("79", "Thành phố Hồ Chí Minh", "province", parent_code="VN"),
    UnitRecord("00004", "Phường Ba Đình", "commune", parent_code="01"),
    UnitRecord("00008", "Phường Ngọc Hà", "commune", parent_code="01"),
    UnitRecord("00091", "Phường Hoàn Kiếm", "commune", parent_code="01"),
    UnitRecord("26734", "Phường Sài Gòn", "commune", parent_code="79"),
    UnitRecord("26740", "Phường Bến Thành", "commune", parent_code="79"),
)


@dataclass
class FakePresence:
    """Who is connected, what each site was told, the handlers and staff events."""

    online: set[int] = field(default_factory=set)
    sent: list[tuple[tuple[int, ...], str, dict[str, Any], bool]] = field(default_factory=list)
    handlers: dict[str, SiteRequestHandler] = field(default_factory=dict)
    events: list[tuple[str, dict[str, Any], int | None]] = field(default_factory=list)

    async def send(
        self, site_ids: Collection[int], kind: str, body: Mapping[str, Any], *, durable: bool
    ) -> None:
        self.sent.append((tuple(site_ids), kind, dict(body), durable))

    def is_online(self, site_id: int) -> bool:
        return site_id in self.online

    def on_message(self, kind: str, handler: SiteRequestHandler) -> None:
        self.handlers[kind] = handler

    async def publish_staff_event(
        self, kind: str, body: Mapping[str, Any], *, province_id: int | None = None
    ) -> None:
        self.events.append((kind, dict(body), province_id))

    def last_watch(self, site_id: int) -> dict[str, Any]:
        """The last ``inspect.watch`` body sent to a site."""
        for ids, kind, body, _ in reversed(self.sent):
            if kind == "inspect.watch" and site_id in ids:
                return dict(body)
        raise AssertionError(f"site {site_id} was never told anything")


@dataclass
class FakeMedia:
    """Grants that name what was asked; records calls ended. `up=False`: no plane."""

    up: bool = True
    asked: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)

    def _ask(self, what: str, *codes: str) -> Grant:
        if not self.up:
            raise NotFound("no media service runs in this server", code="no_media")
        self.asked.append((what, codes))
        return {"kind": what, "sites": list(codes), "token": "t", "room_token": "r"}

    async def watch_grant(self, site_code: str) -> Grant:
        return self._ask("watch", site_code)

    async def site_grant(self, site_code: str) -> Grant:
        return self._ask("site", site_code)

    async def call_grant(self, site_code: str) -> Grant:
        return self._ask("call", site_code)

    async def end_call(self, site_code: str) -> None:
        self.ended.append(site_code)

    async def wall_grants(self, site_codes: Sequence[str]) -> list[Grant]:
        return [self._ask("wall", *site_codes)]


@dataclass
class World:
    """A loaded tree, staff actors, the sites by code and a service over the fakes."""

    db: Database
    sites: SiteDirectory
    presence: FakePresence
    media: FakeMedia
    svc: InspectionService
    ids: dict[str, int]
    provinces: dict[str, int]
    chair: Actor
    operator: Actor
    hanoi: Actor  # province officer of 01
    floors: dict[int, list[str]] = field(default_factory=dict)
    meetings: dict[int, int] = field(default_factory=dict)

    def principal(self, code: str) -> SitePrincipal:
        return SitePrincipal(self.ids[code], code, code, None, 0, "commune", 1)

    def site(self, code: str) -> Actor:
        return Actor.for_site(self.ids[code], code, None)

    async def publishing(self, code: str) -> Mapping[str, Any]:
        """The site says its uplink is up."""
        reply = await self.presence.handlers["inspect.publishing"](self.principal(code), {})
        assert reply is not None
        return reply

    async def audit(self, action: str | None = None) -> list[AuditRecord]:
        _, rows = await query_audit(self.db, AuditQuery(action=action, limit=1000))
        return rows


async def build_world(db: Database, **options: Any) -> World:
    await service.load_units(db, TREE, dataset="test")
    staff = {}
    for name, role, prov, display in (
        ("chair", "chair", None, "Nguyễn Văn Chủ Trì"),
        ("ops", "operator", None, ""),
        ("hanoi", "province_officer", "01", "Trần Thị Hà"),
    ):
        staff[name] = await create_staff(db, name, "long-enough-pw", role, prov, display)
    async with db.session() as s:
        ids = {code: sid for code, sid in (await s.execute(select(Site.code, Site.id))).all()}
        provinces = {
            code: uid
            for code, uid in (
                await s.execute(select(Unit.code, Unit.id).where(Unit.level == "province"))
            ).all()
        }
    sites = SiteDirectory(db)
    presence, media = FakePresence(), FakeMedia()
    floors: dict[int, list[str]] = {}
    meetings: dict[int, int] = {}

    async def floor_sites() -> dict[int, list[str]]:
        return floors

    svc = InspectionService(
        db,
        sites,
        presence=presence,
        media=media,
        live_meeting_of=meetings.get,
        floor_sites=floor_sites,
        **options,
    )
    svc.register()

    def actor(name: str) -> Actor:
        p = staff[name]
        return Actor.for_staff(p.username, p.role, p.province_id, user_id=p.user_id)

    return World(
        db,
        sites,
        presence,
        media,
        svc,
        ids,
        provinces,
        actor("chair"),
        actor("ops"),
        actor("hanoi"),
        floors,
        meetings,
    )
