"""The video wall's leases: standby sites publish while a wall page shows them.

A wall page names up to 36 sites; those on standby (outside a meeting) publish only
while some page shows them. Each page is a lease held by one console (``wall_id``),
renewed by asking again; a page not renewed within the lease ends by itself, so a
closed tab never leaves sites on camera. Each site on a page is told who shows it and
since when (its banner), and every new page shown is one ``inspection.wall`` audit row.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import KW_ONLY, dataclass, field
from datetime import UTC, datetime

from diemcau.actors import Actor
from diemcau.audit import record_action
from diemcau.directory.sites import SiteDirectory
from diemcau.errors import Conflict, Forbidden, Invalid, NotFound
from diemcau.inspection.access import inspectable, require_inspector
from diemcau.inspection.ports import Grant, InspectionMedia
from diemcau.inspection.watch import Looker, WatchBoard
from diemcau.records import Record
from diemcau.store import Database

__all__ = ["MAX_WALL_SITES", "WallDesk", "WallPage"]

MAX_WALL_SITES = 36  # a 6×6 page
MAX_WALLS = 4  # pages one person may hold at once (consoles, tabs)


@dataclass
class _Wall:
    id: str
    actor: Actor
    by: str
    lease_until: float
    sites: dict[int, str] = field(default_factory=dict)  # site id -> code


@dataclass(frozen=True)
class WallPage(Record):
    """A page of the wall: its lease id, the grants to subscribe, the lease's length."""

    wall_id: str
    grants: list[Grant]
    lease_s: float


@dataclass(eq=False, repr=False)
class WallDesk:
    """Wall pages by lease id, and the looks they put on sites.

    ``tell`` sends a site its watch state; ``lease_s`` is how long a page lives unrenewed.
    """

    db: Database
    sites: SiteDirectory
    media: InspectionMedia
    board: WatchBoard
    tell: Callable[[int], Awaitable[None]]
    _: KW_ONLY
    lease_s: float = 30.0
    _walls: dict[str, _Wall] = field(init=False, default_factory=dict)

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    async def show(
        self, actor: Actor, by: str, site_codes: Sequence[str], wall_id: str | None = None
    ) -> WallPage:
        """Show (or keep showing) a page; returns its grants, one per relay.

        Raises:
            Invalid: no site, more than 36, unknown codes (``unknown_site``: a site
                outside the officer's province is one of them, never named as such).
            Forbidden: a role that may not inspect; another person's page.
            Conflict: ``too_many`` pages held at once.
            NotFound: ``no_wall``, the page was left while its grants were made.
        """
        codes = list(dict.fromkeys(site_codes))
        if not 1 <= len(codes) <= MAX_WALL_SITES:
            raise Invalid(f"a wall page holds 1 to {MAX_WALL_SITES} sites", code="bad_page")
        require_inspector(actor, "watch the video wall")
        known = await self.sites.by_codes(codes, reload_missing=True)
        sites = inspectable(actor, codes, known, "unknown sites: ")
        wall = self._walls.get(wall_id or "")
        if wall is not None and wall.actor.name != actor.name:
            raise Forbidden("this wall page is another person's", code="not_owner")
        if wall is None:
            if sum(1 for w in self._walls.values() if w.actor.name == actor.name) >= MAX_WALLS:
                raise Conflict(f"at most {MAX_WALLS} wall pages at once", code="too_many")
        grants = await self.media.wall_grants(codes)
        if wall is not None and self._walls.get(wall.id) is not wall:
            # Left (or expired) while the grants were made: never put it back on a site.
            raise NotFound("no such wall page (it may have ended)", code="no_wall")
        if wall is None:
            wall = _Wall(secrets.token_urlsafe(9), actor, by, 0.0)
            self._walls[wall.id] = wall
        wall.lease_until = self._now() + self.lease_s
        wanted = {site.id: code for site, code in zip(sites, codes, strict=True)}
        if wanted != wall.sites:
            await self._move(wall, wanted)
            await record_action(
                self.db,
                actor,
                "inspection.wall",
                target=f"{len(codes)} sites",
                details={"wall_id": wall.id, "sites": codes},
            )
        return WallPage(wall.id, grants, self.lease_s)

    def held(self) -> int:
        """Wall pages held now, by any console (for health checks and tests)."""
        return len(self._walls)

    async def release(self, actor: Actor, wall_id: str) -> None:
        """The console left the page (idempotent)."""
        wall = self._walls.get(wall_id)
        if wall is None:
            raise NotFound("no such wall page (it may have ended)", code="no_wall")
        if wall.actor.name != actor.name:
            raise Forbidden("this wall page is another person's", code="not_owner")
        await self._drop(wall)

    async def expire(self, now: float) -> None:
        for wall in [w for w in self._walls.values() if now >= w.lease_until]:
            await self._drop(wall)

    async def release_all(self) -> None:
        for wall in list(self._walls.values()):
            await self._drop(wall)

    async def _drop(self, wall: _Wall) -> None:
        self._walls.pop(wall.id, None)
        await self._move(wall, {})

    async def _move(self, wall: _Wall, wanted: dict[int, str]) -> None:
        """Put the wall's look on the new page's sites and take it off the old ones.

        The board changes all at once before any site is told: a page left while the
        sites are being told then takes off exactly what was put on.
        """
        since = datetime.now(UTC)
        old, wall.sites = wall.sites, dict(wanted)
        gone, new = set(old) - set(wanted), set(wanted) - set(old)
        for site_id in gone:
            self.board.drop(site_id, "wall", wall.id)
        for site_id in new:
            self.board.put(site_id, Looker("wall", wall.id, wall.by, wall.actor.role, since))
        for site_id in sorted(gone | new):
            await self.tell(site_id)
