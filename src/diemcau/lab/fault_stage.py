"""The stage a control-plane fault plays on: a store, a meeting, sites and the chair at work.

`FaultStage` seeds a store (SQLite or PostgreSQL) with sites and their join codes,
and, once a control server answers, has the chair start a meeting inviting them,
starts the sites (`SiteWorkload`: joining, filing reports, acknowledging
directives) and the chair (`StaffDriver`: directives, floor grants), and at the
end lets every request be confirmed and counts what was lost (`count_losses`).
The server itself, in-process or killable, is the scenario's business.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
from sqlalchemy import select

from diemcau.accounts.service import create_staff, rotate_site
from diemcau.directory.service import load_builtin, load_units
from diemcau.lab.losses import Losses, count_losses
from diemcau.lab.server import SMALL_TREE, STAFF_PASSWORD
from diemcau.lab.staff_driver import StaffDriver, StaffLedger
from diemcau.lab.workload import SiteWorkload
from diemcau.store import Database, Site, migrate

__all__ = ["FaultResult", "FaultStage", "seed_sites", "utcnow"]


@dataclass
class FaultResult:
    """One scenario's outcome, as `bench/faults.py` prints it and tests assert it."""

    scenario: str
    action: str
    affected: int
    recovery_s: list[float]
    bound_s: float | None
    losses: Losses
    notes: str = ""
    failed: str = ""

    @property
    def ok(self) -> bool:
        if self.failed or len(self.recovery_s) < self.affected or self.losses.total:
            return False
        return self.bound_s is None or not self.recovery_s or max(self.recovery_s) <= self.bound_s


async def seed_sites(url: str, count: int) -> tuple[dict[str, str], dict[str, int]]:
    """Migrate and fill the store at `url` with `count` commune sites (the small tree up to
    8, else ``vn-2025``), their join codes, a chair and an admin; returns (codes, ids)
    by site code."""
    await migrate(url)
    db = Database(url)
    try:
        if count <= 8:
            await load_units(db, list(SMALL_TREE), dataset="test")
        else:
            await load_builtin(db, "vn-2025")
        async with db.session() as s:
            rows = (
                await s.execute(
                    select(Site.code, Site.id)
                    .where(Site.kind == "commune")
                    .order_by(Site.id)
                    .limit(count)
                )
            ).all()
        key = await db.secret_key("")
        codes = {code: await rotate_site(db, key, code) for code, _ in rows}
        await create_staff(db, "chair", STAFF_PASSWORD, "chair", None)
        await create_staff(db, "admin", STAFF_PASSWORD, "admin", None)
    finally:
        await db.dispose()
    return codes, {code: int(sid) for code, sid in rows}


@dataclass
class FaultStage:
    """Sites and the chair at work against the control server(s) at `bases`.

    Args:
        url: the store (seeded by `seed_sites`).
        codes, ids: the sites' join codes and ids by site code.
        bases: the servers' base URLs, in the order the chair tries them.
        presence_urls: their site sockets, in the order the sites try them.
        report_every_s, staff_every_s: the pace of filings and of the chair's rounds.
    """

    url: str
    codes: dict[str, str]
    ids: dict[str, int]
    bases: Sequence[str]
    presence_urls: Sequence[str]
    report_every_s: float = 2.0
    staff_every_s: float = 2.0
    meeting_id: int = 0
    outages: list[tuple[datetime, datetime]] = field(default_factory=list)

    def __post_init__(self) -> None:
        order = sorted(self.codes)
        self.sites = SiteWorkload(
            self.presence_urls, [self.codes[c] for c in order], report_every_s=self.report_every_s
        )
        self.site_ids = [self.ids[c] for c in order]
        self._stop_sites = asyncio.Event()
        self._stop_staff = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.staff: StaffDriver | None = None

    async def _start_meeting(self) -> int:
        async with httpx.AsyncClient(base_url=self.bases[0], timeout=20) as c:
            r = await c.post(
                "/api/auth/login", json={"username": "chair", "password": STAFF_PASSWORD}
            )
            r.raise_for_status()
            auth = {"Authorization": f"Bearer {r.json()['token']}"}
            r = await c.post(
                "/api/meetings",
                json={"title": "Giao ban", "invite": {"sites": sorted(self.codes)}},
                headers=auth,
            )
            r.raise_for_status()
            mid = int(r.json()["id"])
            (await c.post(f"/api/meetings/{mid}/start", headers=auth)).raise_for_status()
        return mid

    async def begin(self, timeout: float = 60.0) -> None:
        """Start the meeting, bring every site in, then set everyone to work."""
        self.meeting_id = await self._start_meeting()
        self._tasks.append(asyncio.create_task(self.sites.run(self._stop_sites)))
        await self.wait_joined(timeout)
        self.staff = StaffDriver(
            self.bases,
            STAFF_PASSWORD,
            self.meeting_id,
            sorted(self.codes),
            every_s=self.staff_every_s,
        )
        self._tasks.append(asyncio.create_task(self.staff.run(self._stop_staff)))
        self.sites.filing.set()

    async def wait_joined(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.sites.ledger.joined) < len(self.codes):
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{len(self.sites.ledger.joined)}/{len(self.codes)} sites joined "
                    f"in {timeout} s ({self.sites.swarm.counters})"
                )
            await asyncio.sleep(0.05)

    def outage(self, down: datetime, up: datetime) -> None:
        """Note that the control plane was down from `down` to `up` (UTC)."""
        self.outages.append((down, up))

    async def finish(self, settle_s: float = 60.0) -> Losses:
        """Stop the chair, let every request be confirmed and every directive arrive, and
        count what was lost; the sites stay connected (`close` ends them).

        The count is taken again for a few seconds while it is not zero: the store's
        view catches up by itself (attendance is written in batches).
        """
        self._stop_staff.set()
        if self._tasks[1:]:
            await asyncio.wait_for(self._tasks[1], settle_s)
        settled = await self.sites.settle(settle_s)
        staff = self.staff.ledger if self.staff is not None else StaffLedger()
        wanted = set(staff.directives)
        deadline = time.monotonic() + settle_s
        while time.monotonic() < deadline and not all(
            wanted <= self.sites.ledger.directives_seen.get(sid, set()) for sid in self.site_ids
        ):
            await asyncio.sleep(0.1)
        settled = await self.sites.settle(settle_s) and settled  # the last acknowledgements
        db = Database(self.url)
        try:
            for _ in range(20):
                connected = [s.site_id for s in self.sites.sites if s.state == "online"]
                losses = await count_losses(
                    db,
                    self.sites.ledger,
                    staff,
                    meeting_id=self.meeting_id,
                    site_ids=self.site_ids,
                    connected=connected,
                    outages=self.outages,
                )
                if not losses.total:
                    break
                await asyncio.sleep(0.5)
        finally:
            await db.dispose()
        if not settled:
            losses.details.append(f"{self.sites.unanswered()} requests never confirmed")
        return losses

    async def close(self) -> None:
        """The sites leave (``bye``) and every task ends."""
        self._stop_staff.set()
        self._stop_sites.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()


def utcnow() -> datetime:
    return datetime.now(UTC)
