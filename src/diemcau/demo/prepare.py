"""A fresh demo store: the national directory, a credential for every site, staff accounts.

Without ``--sheets`` the credentials are issued in one transaction (no QR codes), so the
meeting is live seconds later; the join codes and links go to ``<data>/join-codes.csv``.
With ``--sheets`` the provisioning run prints the per-province CSV and HTML sheets (QR
codes) under ``<data>/provision`` (docs/provisioning.md), about 30 s for the country.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from diemcau.accounts.service import create_staff, join_link, rotate_site
from diemcau.config import Settings
from diemcau.demo.output import say
from diemcau.demo.sites import DemoSite
from diemcau.directory import datasets, service
from diemcau.directory.sites import SiteDirectory
from diemcau.instance_keys import load_instance_keys
from diemcau.sim.cli import provision_sim_codes
from diemcau.sim.sites import read_join_codes
from diemcau.store import Database, migrate

__all__ = ["Prepared", "STAFF", "prepare"]

# The demo's staff accounts: (username, role); they share the demo's password.
STAFF = (("admin", "admin"), ("chair", "chair"), ("operator", "operator"))


@dataclass
class Prepared:
    """What `prepare` made: the sites with their join codes, and how long it took."""

    sites: list[DemoSite] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


async def prepare(
    settings: Settings, dataset: str, password: str, *, sheets: bool = False
) -> Prepared:
    """Load ``dataset`` into a fresh store, issue every site's credential, add the staff."""
    started = time.perf_counter()
    url = settings.resolved_database_url()
    await migrate(url)
    db = Database(url)
    try:
        t0 = time.perf_counter()
        await service.load_units(db, datasets.load_dataset(dataset), dataset=dataset)
        stats = await service.stats(db)
        say(f"directory {dataset}: {stats} in {time.perf_counter() - t0:.1f} s")
        codes = await _issue_credentials(db, settings, dataset, sheets)
        for username, role in STAFF:
            await create_staff(db, username, password, role, display_name=username.title())
        directory = SiteDirectory(db)
        by_code = {s.code: s for s in await directory.all()}
    finally:
        await db.dispose()
    sites: list[DemoSite] = []
    for jc in codes:
        info = by_code.get(jc.split(":", 1)[0])
        if info is not None:
            sites.append(DemoSite(info.id, info.code, info.name, info.kind, info.province_code, jc))
    _write_join_codes(settings.data_dir / "join-codes.csv", settings.resolved_public_url(), sites)
    return Prepared(sites, dict(stats), time.perf_counter() - started)


async def _issue_credentials(
    db: Database, settings: Settings, dataset: str, sheets: bool
) -> list[str]:
    """Every site's join code: printed on sheets, or issued in one transaction."""
    t0 = time.perf_counter()
    key = (await load_instance_keys(settings, db)).site
    if sheets:
        from diemcau.directory.provision import provision

        out = settings.data_dir / "provision"
        await provision(db, key, settings.resolved_public_url(), out)
        say(f"provisioned sheets in {time.perf_counter() - t0:.1f} s -> {out}/index.html")
        return read_join_codes(out)
    codes = await provision_sim_codes(settings.resolved_database_url(), dataset, None)
    # The central hall's own site too, so the map shows every site online.
    for info in await SiteDirectory(db).all():
        if info.kind == "chair":
            codes.append(await rotate_site(db, key, info.code))
    say(f"issued {len(codes)} site credentials in {time.perf_counter() - t0:.1f} s")
    return codes


def _write_join_codes(path: Path, base: str, sites: Sequence[DemoSite]) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["site code", "site name", "kind", "province", "join link", "join code"])
        for s in sites:
            w.writerow(
                [s.code, s.name, s.kind, s.province, join_link(base, s.join_code), s.join_code]
            )
