"""Command pages in Chromium: time to interactive of the national completeness table and
of the map coloured by an indicator, for the whole country today and in 2021.

Usage::

    python bench/web.py [--datasets vn-2025,vn-legacy] [--runs 3] [--shots DIR]

For each dataset, in a fresh temporary SQLite store: load the directory, write a
week of COVID-19 reports straight into the tables (every commune but one in ten on
the last day, so the missing lists are not empty; rollups rebuilt), start the real
server on 127.0.0.1 (the HTTP app and the site-session socket, as ``diemcau serve``)
and Debian's Chromium (headless, no GPU) signed in as the chair. Then, per run, a
fresh navigation to:

- ``/reports``: until the province table shows every province (the KPIs are
  filled by the same answer), and until the page has settled (the reporting-rate
  table of seven periods drawn too);
- ``/charts``: until the map has drawn every site coloured by new cases for the
  day (geo arrays, map values, a canvas redraw), with the redraw's own time.

Times are from the start of navigation to the frame where the condition held
(``performance.now()`` in the page), so they include fetching the page, its
scripts and every API answer. Prints the median (min–max) of the runs beside the
targets: 1 s with 3,321 communes, 2 s with 10,795 sites.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import sys
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from diemcau.accounts.service import create_staff
from diemcau.api.server import serve
from diemcau.command.models import Report
from diemcau.command.rollups import rebuild
from diemcau.command.schemas import builtin_registry
from diemcau.config import Settings
from diemcau.directory.service import load_builtin
from diemcau.runtime import Runtime
from diemcau.store import Database, Site, migrate

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
PASSWORD = "bench-password-1"  # noqa: S105 - a throwaway account in a temporary store
TARGET_S = {"vn-2025": 1.0, "vn-legacy": 2.0}
ZONES = ("green", "yellow", "orange", "red")

# Conditions evaluated on every animation frame; each answers performance.now() once met.
TABLE_READY = """(n) => {
  const rows = document.querySelectorAll('#prov-table tbody tr[data-prov]').length;
  return rows >= n && document.querySelector('[data-kpi=k_missing] b') ? performance.now() : 0;
}"""
PAGE_SETTLED = """(n) => {
  const rows = document.querySelectorAll('#trend-table tbody tr').length;
  return rows >= n ? performance.now() : 0;
}"""
# How long an API answer took, seen from the page (request sent → last byte), in ms.
ANSWER_MS = """(part) => {
  const e = performance.getEntriesByType('resource').find((x) => x.name.includes(part));
  return e ? e.responseEnd - e.requestStart : -1;
}"""
MAP_READY = """(n) => {
  const c = window.diemcauCharts;
  if (!c || !c.values || c.values.size !== n || c.map.drawCount <= c.drawsAtValues) return 0;
  return [performance.now(), c.map.lastDrawMs];
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _seed(url: str, dataset: str, day: date) -> tuple[int, int, int, int]:
    """Directory, the chair account, a week of reports.

    Returns:
        (provinces, communes, every site on the map, reports on the last day).
    """
    await migrate(url)
    db = Database(url)
    try:
        await load_builtin(db, dataset)
        await create_staff(db, "chair", PASSWORD, "chair")
        schema = builtin_registry().get("covid19")
        async with db.session() as s:
            sites = (
                await s.execute(
                    select(Site.id, Site.province_id)
                    .where(Site.kind == "commune")
                    .order_by(Site.id)
                )
            ).all()
            provinces = len({pid for _, pid in sites})
            everything = len((await s.scalars(select(Site.id))).all())
        rng = random.Random(5)
        at = datetime.now(UTC)
        days = [day - timedelta(days=k) for k in range(6, -1, -1)]
        filed_today = 0
        for d in days:
            rows = []
            for sid, pid in sites:
                if rng.random() < 0.1:
                    continue
                rows.append(
                    {
                        "schema_key": "covid19",
                        "period": d,
                        "site_id": sid,
                        "province_id": pid,
                        "values": {
                            "new_cases": rng.randint(0, 40),
                            "under_treatment": rng.randint(0, 300),
                            "deaths": rng.randint(0, 2),
                            "zone_level": rng.choice(ZONES),
                        },
                        "revision": 1,
                        "late": False,
                        "source": "bench",
                        "submitted_by": "bench",
                        "submitted_at": at,
                        "updated_by": "bench",
                        "updated_at": at,
                    }
                )
            async with db.session() as s:
                for i in range(0, len(rows), 2000):
                    await s.execute(insert(Report), rows[i : i + 2000])
            filed_today = len(rows)
        await rebuild(db, schema, days[0], days[-1])
        return provinces, len(sites), everything, filed_today
    finally:
        await db.dispose()


async def _measure(
    base: str, token: str, provinces: int, filed: int, runs: int, shots: Path | None, name: str
) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    out: dict[str, list[Any]] = {
        "table": [],
        "settled": [],
        "map": [],
        "draw": [],
        "api": [],
        "geo": [],
        "values": [],
    }
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1366, "height": 900})
            await page.add_init_script(f"localStorage.setItem('diemcau.token', {token!r});")
            for run in range(runs + 1):  # the first run warms the caches and is left out
                await page.goto(base + "/reports")
                table = await page.wait_for_function(
                    TABLE_READY, arg=provinces, polling="raf", timeout=60_000
                )
                settled = await page.wait_for_function(
                    PAGE_SETTLED, arg=provinces, polling="raf", timeout=60_000
                )
                api_ms = await page.evaluate(ANSWER_MS, "/api/command/completeness?")
                await page.goto(base + "/charts")
                shown = await page.wait_for_function(
                    MAP_READY, arg=filed, polling="raf", timeout=60_000
                )
                at, draw = await shown.json_value()
                geo_ms = await page.evaluate(ANSWER_MS, "/api/web/geo")
                values_ms = await page.evaluate(ANSWER_MS, "/api/command/map?")
                if shots is not None and run == runs:
                    shots.mkdir(parents=True, exist_ok=True)
                    await page.screenshot(path=str(shots / f"charts-{name}.png"))
                    await page.goto(base + "/reports")
                    await page.wait_for_function(PAGE_SETTLED, arg=provinces, polling="raf")
                    await page.screenshot(path=str(shots / f"reports-{name}.png"), full_page=True)
                if run:
                    out["table"].append(await table.json_value() / 1000)
                    out["settled"].append(await settled.json_value() / 1000)
                    out["map"].append(at / 1000)
                    out["draw"].append(draw)
                    out["api"].append(api_ms)
                    out["geo"].append(geo_ms)
                    out["values"].append(values_ms)
        finally:
            await browser.close()
    return out


async def _one(dataset: str, runs: int, shots: Path | None) -> list[list[str]]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'web.db'}"
        today = datetime.now(UTC).date()
        schema = builtin_registry().get("covid19")
        day = schema.period_of(datetime.now(UTC))
        assert abs((day - today).days) <= 1
        provinces, sites, everything, filed = await _seed(url, dataset, day)
        port = _free_port()
        os.environ["DIEMCAU_PRESENCE_PORT"] = "0"
        settings = Settings(data_dir=Path(tmp), database_url=url, host="127.0.0.1", port=port)
        ready: asyncio.Future[Runtime] = asyncio.get_running_loop().create_future()
        stop = asyncio.Event()

        async def on_ready(runtime: Runtime) -> None:
            ready.set_result(runtime)

        task = asyncio.create_task(serve(settings, on_ready=on_ready, stop=stop))
        try:
            await asyncio.wait_for(ready, 60)
            import httpx

            base = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(base_url=base) as api:
                r = await api.post(
                    "/api/auth/login", json={"username": "chair", "password": PASSWORD}
                )
                token = str(r.json()["token"])
            got = await _measure(base, token, provinces, filed, runs, shots, dataset)
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)

    def cell(xs: list[float], unit: str = "s", scale: float = 1.0) -> str:
        v = [x * scale for x in xs]
        fmt = "{:.2f}" if unit == "s" else "{:.0f}"
        return (
            f"{fmt.format(statistics.median(v))} {unit} ({fmt.format(min(v))}–{fmt.format(max(v))})"
        )

    target = f"≤ {TARGET_S[dataset]:.0f} s" if dataset in TARGET_S else "–"
    what = (
        f"{dataset}: {everything:,} sites ({sites:,} communes, {provinces} provinces), "
        f"{filed:,} reports that day"
    )
    return [
        [what, "completeness table by province interactive", cell(got["table"]), target],
        [what, "  of which the completeness answer (server)", cell(got["api"], "ms"), "–"],
        [what, "reports page settled (+ 7-period rate table)", cell(got["settled"]), "–"],
        [what, "map by indicator drawn (every site coloured)", cell(got["map"]), target],
        [what, "  of which the site positions answer (geo)", cell(got["geo"], "ms"), "–"],
        [what, "  of which the map values answer", cell(got["values"], "ms"), "–"],
        [what, "  of which the canvas redraw", cell(got["draw"], "ms"), "–"],
    ]


def _print(rows: list[list[str]]) -> None:
    head = ["dataset", "what (from navigation start)", "median (min–max)", "target"]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
    for r in [head, ["-" * w for w in widths], *rows]:
        print(" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


async def main_async(args: argparse.Namespace) -> int:
    if not os.path.exists(CHROMIUM):
        print(f"{CHROMIUM} is missing (Debian package chromium)", file=sys.stderr)
        return 2
    rows: list[list[str]] = []
    for dataset in args.datasets.split(","):
        rows += await _one(dataset.strip(), args.runs, Path(args.shots) if args.shots else None)
    _print(rows)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="vn-2025,vn-legacy")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--shots", default="", help="save a screenshot of each page here")
    return asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
