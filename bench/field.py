"""Field benchmark: the multi-host lab, Chromium on each commune PC, through NAT and TURN/TLS.

Run (as root; it enters a private network namespace and builds the lab)::

    .venv/bin/python bench/field.py [--runs 3] [--db sqlite|postgresql] [--variant]

Per office (open = the reference, nat, tcp-only through TURN over TLS on 443),
medians over ``--runs`` fresh browsers, after one uncounted warm-up:

- join link -> first program frame: ``goto`` of the HTTPS join link, wait for
  the page, click "enter", until the program ``<video>`` decoded a frame;
- glass-to-glass p50: the chair bot's frame stamps read back from the
  program picture in the page (30 samples over ~3 s);
- floor handover -> first frame elsewhere: floor granted to this PC, a
  viewer on the other relay subscribes when told, until its first frame;
- spot-check -> first frame: spot-check grant + subscription on the PC's
  relay, until the first frame;
- TURN CPU per relayed site: coturn's CPU over 5 s while the PC is in the
  meeting, divided by the sites it relays (0 when the path is not relayed).

``--variant`` builds the other lab instead: relay2 behind a 1:1 NAT
(``nat_1_1_mapping``), relay1 offering ICE-TCP, and an office that lets any
TCP out but no UDP; its rows compare, in the same run, the open office on
relay1 (reference) and on the NATed relay2, and the UDP-less office on relay1
(ICE-TCP) and on relay2 (no TCP candidates: TURN over TCP). ``--db
postgresql`` runs the control server on the control host's own PostgreSQL
(`LabPostgres`) instead of SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from diemcau.media.isolation import enter_isolated_netns


@dataclass(frozen=True)
class Row:
    """One line of the table: a label, the office's LAN, its site, a site elsewhere."""

    label: str
    lan: str
    site: str
    watcher: str


MAIN = (
    Row("open", "open", "00004", "26740"),
    Row("nat", "nat", "26734", "00091"),
    Row("tcp-only", "tcp", "00008", "27259"),
)
VARIANT = (
    Row("open/relay1", "open", "00004", "26740"),
    Row("open/NAT relay2", "open", "26740", "00004"),
    Row("noudp/ICE-TCP", "noudp", "00091", "27259"),
    Row("noudp/TURN-TCP", "noudp", "27259", "00091"),
)


def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


async def _first_frame(page: Any, t0: float, what: str) -> float:
    from diemcau.lab.browser import FRAMES_JS

    while int(await page.evaluate(FRAMES_JS, "#program")) <= 0:
        if time.monotonic() - t0 > 30:
            raise TimeoutError(f"{what}: no program frame in 30 s")
        await asyncio.sleep(0.01)
    return time.monotonic() - t0


async def _viewer_first_frame(make: Any, t0: float, what: str) -> float:
    """Subscribe (again while the feed is not on the node yet) until the first frame."""
    from diemcau.media.control_link import ERR_NO_SUCH_FEED
    from diemcau.media.janus import JanusError

    while True:
        bot = make()
        try:
            await bot.start(timeout=15)
            break
        except JanusError as exc:
            await bot.stop()
            if exc.code != ERR_NO_SUCH_FEED or time.monotonic() - t0 > 20:
                raise
            await asyncio.sleep(0.05)
    try:
        while bot.stats.frames + bot.stats.bad_frames + bot.stats.unreadable_frames == 0:
            if time.monotonic() - t0 > 20:
                raise TimeoutError(f"{what}: no frame")
            await asyncio.sleep(0.01)
        return time.monotonic() - t0
    finally:
        await bot.stop()


def _path(path: dict[str, Any] | None) -> str:
    """``type/protocol to address`` of an ICE path (``relay/tls``: TURN over TLS)."""
    if not path:
        return "none"
    kind = f"{path.get('type')}/{path.get('relayProtocol') or path.get('protocol')}"
    return f"{kind} to {path.get('remote')}"


async def _one(m: Any, pw: Any, row: Row) -> dict[str, float]:
    from diemcau.lab.browser import PROGRAM_PATH_JS, STAMP_AGE_JS, launch_chromium
    from diemcau.media.orchestrator import feed_id
    from diemcau.sim.janus_bots import JanusTarget, ViewerBot

    dep = m.dep
    browser = await launch_chromium(pw, dep.spki_pins(), executable=str(dep.chromium_in(row.lan)))
    out: dict[str, float] = {}
    try:
        page = await (await browser.new_context()).new_page()
        t0 = time.monotonic()
        await page.goto(m.srv.join_link(row.site))
        await page.wait_for_selector("#enter:not([hidden])", timeout=30_000)
        await page.click("#enter")
        out["join"] = await _first_frame(page, t0, row.label)
        path = await page.evaluate(PROGRAM_PATH_JS)
        ages: list[float] = []
        for _ in range(30):
            age = await page.evaluate(STAMP_AGE_JS, "#program")
            if age is not None and age < 10_000:
                ages.append(float(age))
            await asyncio.sleep(0.1)
        out["g2g"] = med(ages)
        later = await page.evaluate(PROGRAM_PATH_JS)
        cpu0, w0 = dep.turn.cpu_seconds(), time.monotonic()
        await asyncio.sleep(5)
        cpu = (dep.turn.cpu_seconds() - cpu0) / (time.monotonic() - w0) * 100
        out["turn_cpu"] = cpu if later and later.get("type") == "relay" else float("nan")
        async with m.client() as c:
            t1 = time.monotonic()
            await c.post(f"/api/meetings/{m.meeting}/floor/grant", json={"site_codes": [row.site]})
            g = await m.orch.site_media_grant(row.watcher, m.meeting)
            target = JanusTarget.program_of(g)
            out["floor"] = await _viewer_first_frame(
                lambda: ViewerBot(target, feed_id("site", row.site)), t1, f"{row.label} floor"
            )
            await c.post(f"/api/meetings/{m.meeting}/floor/revoke")
        t2 = time.monotonic()
        g = await m.orch.spot_check_grant(row.site)
        spot = JanusTarget.watch_of(g)
        out["spot"] = await _viewer_first_frame(
            lambda: ViewerBot(spot, g["subscribe"]["feed_id"]), t2, f"{row.label} spot-check"
        )
        print(f"  {row.label}: program path {_path(path)}, 3 s later {_path(later)}", flush=True)
    finally:
        await browser.close()
    return out


async def main(runs: int, db: str, variant: bool) -> None:
    from playwright.async_api import async_playwright

    from diemcau.lab.deployment import LabDeployment
    from diemcau.lab.meeting import field_meeting
    from diemcau.lab.network import LANS, NOUDP_LAN, Lab
    from diemcau.lab.trust import lab_tls

    rows = VARIANT if variant else MAIN
    tmp = Path(tempfile.mkdtemp(prefix="diemcau-field-"))
    lab = (
        Lab(control_here=True, lans=(LANS[0], NOUDP_LAN), nat_hosts=("relay2",))
        if variant
        else Lab(control_here=True)
    )
    results: dict[str, list[dict[str, float]]] = {r.label: [] for r in rows}
    with lab:
        dep = LabDeployment(
            lab,
            tmp / "lab",
            {"relay1": ("01",), "relay2": ("79",)},
            ca=lab_tls().ca,
            ice_tcp=("relay1",) if variant else (),
            postgres=db == "postgresql",
        )
        dep.prepare()
        await dep.start()
        try:
            url = dep.database_url if db == "postgresql" else None
            codes = sorted({c for r in rows for c in (r.site, r.watcher)})
            async with (
                field_meeting(dep, tmp, codes, database_url=url, health_interval=0.5) as m,
                async_playwright() as pw,
            ):
                # The first browser start pays cold caches (Chromium, TLS, Janus): not counted.
                await _one(m, pw, rows[0])
                for _ in range(runs):
                    for row in rows:
                        results[row.label].append(await _one(m, pw, row))
        finally:
            await dep.stop()
    _table(rows, results, runs, db, variant)


def _table(
    rows: tuple[Row, ...], results: dict[str, list[dict[str, float]]], runs: int, db: str, v: bool
) -> None:
    ref_rows = results[rows[0].label]
    ref = {k: med([r[k] for r in ref_rows]) for k in ("join", "spot", "floor", "g2g")}
    lab = "variant lab (1:1 NAT relay2, ICE-TCP relay1)" if v else "field lab"
    print(f"{lab}, control store {db}, {runs} run(s) per row, medians (x = ratio to first row)")
    print(
        f"{'office':<17}{'join->frame':>16}{'spot->frame':>16}{'floor->frame':>16}"
        f"{'g2g p50':>16}{'TURN CPU/site':>15}"
    )
    for row in rows:
        got = results[row.label]
        cpu = med([r["turn_cpu"] for r in got])
        cpu_text = "-" if cpu != cpu else f"{cpu:.2f} %"
        first = row is rows[0]
        cells = [_cell(got, first, ref, k) for k in ("join", "spot", "floor", "g2g")]
        print(
            f"{row.label:<17}{cells[0]:>16}{cells[1]:>16}{cells[2]:>16}{cells[3]:>16}{cpu_text:>15}"
        )


def _cell(rows: list[dict[str, float]], first: bool, ref: dict[str, float], key: str) -> str:
    """A median in ms, with its ratio to the first row's."""
    v = med([r[key] for r in rows])
    text = f"{v if key == 'g2g' else v * 1000:.0f} ms"
    return text if first else f"{text} ({v / ref[key]:.2f}x)"


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--variant", action="store_true", help="the 1:1 NAT / ICE-TCP lab")
    args = ap.parse_args()
    enter_isolated_netns()
    asyncio.run(main(args.runs, args.db, args.variant))
