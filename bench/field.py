"""Field benchmark: the multi-host lab, Chromium on each commune PC, through NAT and TURN/TLS.

Run (as root; it enters a private network namespace and builds the lab)::

    .venv/bin/python bench/field.py [--runs 3]

Per LAN (open = the reference, nat, tcp-only through TURN over TLS on 443),
medians over ``--runs`` fresh browsers:

- join link -> first program frame: ``goto`` of the HTTPS join link, wait for
  the page, click "enter", until the program ``<video>`` decoded a frame;
- glass-to-glass p50: the chair bot's frame stamps read back from the
  program picture in the page (30 samples over ~3 s);
- floor handover -> first frame elsewhere: floor granted to this PC, a
  viewer on the other relay subscribes when told, until its first frame;
- spot-check -> first frame: spot-check grant + subscription on the PC's
  relay, until the first frame;
- TURN CPU per relayed site: coturn's CPU over 5 s while the PC is in the
  meeting, divided by the sites it relays (0 for open and nat).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from diemcau.media.isolation import enter_isolated_netns  # noqa: E402

SITES = {"open": ("00004", "26740"), "nat": ("26734", "00091"), "tcp": ("00008", "27259")}


def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


async def _one(env: Any, lan: str) -> dict[str, float]:
    import httpx

    from diemcau.lab.browser import FRAMES_JS, STAMP_AGE_JS, chromium_args
    from diemcau.media.orchestrator import feed_id
    from diemcau.sim.janus_bots import JanusTarget, ViewerBot

    dep, srv, orch, mid, token, pw = env
    code, watcher = SITES[lan]
    browser = await pw.chromium.launch(
        executable_path=str(dep.chromium_in(lan)),
        headless=True,
        args=chromium_args(dep.spki_pins()),
    )
    out: dict[str, float] = {}
    try:
        page = await (await browser.new_context()).new_page()
        t0 = time.monotonic()
        await page.goto(srv.join_link(code))
        await page.wait_for_selector("#enter:not([hidden])", timeout=30_000)
        await page.click("#enter")
        while int(await page.evaluate(FRAMES_JS, "#program")) <= 0:
            if time.monotonic() - t0 > 30:
                raise TimeoutError(f"{lan}: no program frame in 30 s")
            await asyncio.sleep(0.01)
        out["join"] = time.monotonic() - t0
        ages: list[float] = []
        for _ in range(30):
            age = await page.evaluate(STAMP_AGE_JS, "#program")
            if age is not None and age < 10_000:
                ages.append(float(age))
            await asyncio.sleep(0.1)
        out["g2g"] = med(ages)
        cpu0, w0 = dep.turn.cpu_seconds(), time.monotonic()
        await asyncio.sleep(5)
        relayed = 1 if lan == "tcp" else 0
        cpu = (dep.turn.cpu_seconds() - cpu0) / (time.monotonic() - w0) * 100
        out["turn_cpu"] = cpu / relayed if relayed else float("nan")
        auth = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=srv.base_url, timeout=20) as c:
            t1 = time.monotonic()
            await c.post(
                f"/api/meetings/{mid}/floor/grant", json={"site_codes": [code]}, headers=auth
            )
            g = await orch.site_media_grant(watcher, mid)
            viewer = ViewerBot(
                JanusTarget(g["ws_url"], g["program"]["room"], g["token"], g["room_token"]),
                feed_id("site", code),
            )
            await viewer.start(timeout=15)
            while viewer.stats.bad_frames + viewer.stats.frames == 0:
                if time.monotonic() - t1 > 20:
                    raise TimeoutError(f"{lan}: no floor frame")
                await asyncio.sleep(0.01)
            out["floor"] = time.monotonic() - t1
            await viewer.stop()
            await c.post(f"/api/meetings/{mid}/floor/revoke", headers=auth)
        t2 = time.monotonic()
        g = await orch.spot_check_grant(code)
        spot = ViewerBot(
            JanusTarget(g["ws_url"], g["subscribe"]["room"], g["token"], g["room_token"]),
            g["subscribe"]["feed_id"],
        )
        await spot.start(timeout=15)
        while spot.stats.bad_frames + spot.stats.frames == 0:
            if time.monotonic() - t2 > 20:
                raise TimeoutError(f"{lan}: no spot-check frame")
            await asyncio.sleep(0.01)
        out["spot"] = time.monotonic() - t2
        await spot.stop()
    finally:
        await browser.close()
    return out


async def main(runs: int) -> None:
    import httpx
    from playwright.async_api import async_playwright
    from tests.browser import lab_tls, live_server

    from diemcau.lab.deployment import LabDeployment
    from diemcau.lab.network import Lab
    from diemcau.media.node import NodeRegistry
    from diemcau.media.orchestrator import MediaOrchestrator
    from diemcau.media.runtime import site_refs
    from diemcau.sim.janus_bots import JanusTarget, PublisherBot

    tmp = Path(tempfile.mkdtemp(prefix="diemcau-field-"))
    codes = tuple(c for pair in SITES.values() for c in pair)
    with Lab(control_here=True) as lab:
        dep = LabDeployment(
            lab, tmp / "lab", {"relay1": ("01",), "relay2": ("79",)}, ca=lab_tls().ca
        )
        dep.prepare()
        await dep.start()
        env_vars = {
            "DIEMCAU_PRESENCE_HOST": "198.51.100.11",
            "DIEMCAU_PRESENCE_PORT": "443",
            "DIEMCAU_PRESENCE_URL": "wss://198.51.100.11/site",
        }
        try:
            async with (
                live_server(
                    tmp,
                    join_sites=codes,
                    host=lab.ip("control"),
                    port=443,
                    tls_files=dep.certs["control"],
                    env=env_vars,
                ) as srv,
                async_playwright() as pw,
            ):
                registry = NodeRegistry(interval=0.5, down_after=3.0)
                orch = MediaOrchestrator(
                    dep.nodes(),
                    await site_refs(srv.runtime.db),
                    sync_interval=0.2,
                    registry=registry,
                    turn=dep.turn_servers(),
                )
                await orch.start()
                registry.start()
                srv.runtime.services["media"] = orch
                async with httpx.AsyncClient(base_url=srv.base_url, timeout=20) as c:
                    r = await c.post(
                        "/api/auth/login",
                        json={"username": "chair", "password": srv.staff_password},
                    )
                    token = r.json()["token"]
                    auth = {"Authorization": f"Bearer {token}"}
                    r = await c.post(
                        "/api/meetings",
                        headers=auth,
                        json={"title": "Bench", "invite": {"units": ["01", "79"]}},
                    )
                    mid = int(r.json()["id"])
                    await c.post(f"/api/meetings/{mid}/start", headers=auth)
                g = orch.chair_media_grant(mid)
                chair = PublisherBot(
                    JanusTarget(g["ws_url"], g["publish"]["room"], g["token"], g["room_token"]),
                    g["publish"]["feed_id"],
                    "CHAIR",
                )
                await chair.start()
                env = (dep, srv, orch, mid, token, pw)
                results: dict[str, list[dict[str, float]]] = {lan: [] for lan in SITES}
                for _ in range(runs):
                    for lan in SITES:
                        results[lan].append(await _one(env, lan))
                await chair.stop()
                await orch.close()
                await registry.stop()
        finally:
            await dep.stop()
    ref = {k: med([r[k] for r in results["open"]]) for k in ("join", "spot", "floor", "g2g")}
    print(f"field lab, {runs} run(s) per LAN, medians (x = ratio to open)")
    print(
        f"{'LAN':<9}{'join->frame':>16}{'spot->frame':>16}{'floor->frame':>16}"
        f"{'g2g p50':>14}{'TURN CPU/site':>15}"
    )
    for lan, rows in results.items():
        cpu = med([r["turn_cpu"] for r in rows])
        cpu_text = "-" if cpu != cpu else f"{cpu:.2f} %"
        cells = [_cell(rows, lan, ref, k) for k in ("join", "spot", "floor", "g2g")]
        print(f"{lan:<9}{cells[0]:>16}{cells[1]:>16}{cells[2]:>16}{cells[3]:>14}{cpu_text:>15}")


def _cell(rows: list[dict[str, float]], lan: str, ref: dict[str, float], key: str) -> str:
    """A median in ms, with its ratio to the open LAN's."""
    v = med([r[key] for r in rows])
    text = f"{v if key == 'g2g' else v * 1000:.0f} ms"
    return f"{text} ({v / ref[key]:.2f}x)" if lan != "open" else text


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    enter_isolated_netns()
    asyncio.run(main(args.runs))
