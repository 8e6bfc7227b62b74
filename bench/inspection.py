"""Online inspection: inspect → first frame for standby and publishing sites, in Chromium.

Run (as root; it enters a private network namespace)::

    .venv/bin/python bench/inspection.py [--runs 10] [--sites 3]

Starts the real control server (HTTPS, the lab certificate), a central and two relay
Janus processes with the media orchestrator installed, and Debian's Chromium: one page
per site terminal, opened from its join link and left on standby (control session up,
devices granted, nothing published), and the inspection page signed in as the chair.
Then, per run, on the inspection page (``performance.now()`` in the page):

- **standby site**: ``new SiteInspection(code).start()`` — the same code the inspect
  button runs: the POST, the site told over its control session, the site publishing
  to its relay, the page subscribing as soon as the feed exists — until the first
  decoded frame (``requestVideoFrameCallback``); then the inspection ends and the run
  waits until the terminal has stopped publishing;
- **publishing site**: the same, on a site already publishing (a video-wall page shows
  it, so it publishes on standby before the inspection starts);
- **bare Janus subscribe**: for reference, in the same run and on the same publishing
  feed: a VideoRoom subscription on the page's open session to the relay with a grant
  already in hand, until the first decoded frame — no control plane at all.

Prints p50, p95, min and max of each beside the targets (≤ 1.0 s for a standby site,
goal 0.5 s; ≤ 0.3 s for a publishing one). docs/inspection.md keeps the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from diemcau.media.isolation import enter_isolated_netns

SITES = ("26734", "26740", "00004", "00008", "27259", "00091")

# In the inspection page: inspect a site and answer the time to its first frame (ms).
INSPECT = """async (code) => {
  const v = document.querySelector('#insp-video');
  const x = new SiteInspection(code, { video: v, pool: window.diemcauInspection.pool });
  await x.start();
  const t0 = performance.now();
  while (x.firstFrameMs === null) {
    if (x.state === 'not_answered' || performance.now() - t0 > 15000) { await x.end(); return -1; }
    await new Promise((r) => setTimeout(r, 5));
  }
  const ms = x.firstFrameMs;
  await x.end();
  v.srcObject = null;
  return ms;
}"""

# A bare subscription to a publishing feed with a grant in hand, on the page's session.
BARE = """async (g) => {
  const v = document.createElement('video');
  v.muted = true; v.autoplay = true; document.body.append(v);
  const t0 = performance.now();
  const s = await pooledSession(window.diemcauInspection.pool, g);
  const sub = await janusSubscribe(s, g.subscribe.room, g.subscribe.feed_id, g.room_token);
  v.srcObject = sub.stream;
  v.play().catch(() => {});
  const ms = await new Promise((resolve) => {
    v.requestVideoFrameCallback(() => resolve(performance.now() - t0));
  });
  await sub.handle.detach();
  v.remove();
  return ms;
}"""


def pct(values: Sequence[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))] if s else float("nan")


async def _media(srv: Any) -> tuple[Any, Any, Any]:
    from diemcau.lab.trust import lab_tls
    from diemcau.media.cluster import LocalCluster
    from diemcau.media.node import NodeRegistry
    from diemcau.media.orchestrator import MediaOrchestrator
    from diemcau.media.service import site_refs

    cluster = LocalCluster(relays=[("r1", ("01",), 50), ("r2", ("79",), 50)], tls=lab_tls().server)
    await cluster.start()
    registry = NodeRegistry(interval=0.5, down_after=2.0, request_timeout=1.0)
    orch = MediaOrchestrator(
        cluster.nodes(), await site_refs(srv.runtime.sites), sync_interval=0.3, registry=registry
    )
    await orch.start()
    registry.start()
    srv.runtime.media_plane.install(orch)
    return cluster, registry, orch


async def _standby_sites(browser: Any, srv: Any, codes: Sequence[str]) -> dict[str, Any]:
    pages = {}
    for code in codes:
        page = await (await browser.new_context()).new_page()
        await page.goto(srv.join_link(code))
        await page.wait_for_function(
            "() => window.diemcauSite && window.diemcauSite.standby.session !== null",
            timeout=20_000,
        )
        pages[code] = page
    return pages


async def _stopped(site: Any) -> None:
    await site.wait_for_function(
        "() => window.diemcauSite.standby.pub === null && !window.diemcauSite.standby.watched",
        timeout=15_000,
    )


async def run(runs: int, nsites: int) -> None:
    from playwright.async_api import async_playwright

    from diemcau.lab.browser import launch_chromium
    from diemcau.lab.server import STAFF_PASSWORD, live_server
    from diemcau.lab.trust import lab_tls

    codes = SITES[:nsites]
    standby: list[float] = []
    publishing: list[float] = []
    bare: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        async with live_server(Path(tmp), join_sites=codes) as srv:
            cluster, registry, orch = await _media(srv)
            try:
                async with async_playwright() as pw:
                    browser = await launch_chromium(pw, [lab_tls().spki])
                    sites = await _standby_sites(browser, srv, codes)
                    page = await (await browser.new_context()).new_page()
                    await page.goto(srv.base_url + "/inspection")
                    await page.fill("#login input[name=username]", "chair")
                    await page.fill("#login input[name=password]", STAFF_PASSWORD)
                    await page.click("#login button[type=submit]")
                    await page.wait_for_selector("#app:not([hidden])")
                    async with httpx.AsyncClient(
                        base_url=srv.base_url, verify=str(lab_tls().ca.cert_path), timeout=15
                    ) as api:
                        r = await api.post(
                            "/api/auth/login",
                            json={"username": "chair", "password": STAFF_PASSWORD},
                        )
                        auth = {"Authorization": "Bearer " + r.json()["token"]}
                        # A warm-up inspection opens the page's session to each relay.
                        for code in codes:
                            await page.evaluate(INSPECT, code)
                            await _stopped(sites[code])
                        for i in range(runs):
                            code = codes[i % len(codes)]
                            ms = float(await page.evaluate(INSPECT, code))
                            if ms >= 0:
                                standby.append(ms)
                            await _stopped(sites[code])
                            # The same site, already publishing: a wall page shows it.
                            wall = await api.post(
                                "/api/inspection/wall", json={"sites": [code]}, headers=auth
                            )
                            wall.raise_for_status()
                            await sites[code].wait_for_function(
                                "() => window.diemcauSite.standby.pub !== null", timeout=15_000
                            )
                            grant = (await api.get(f"/api/media/spot/{code}", headers=auth)).json()
                            await asyncio.sleep(0.5)  # the uplink settles (ICE, first keyframe)
                            # Both subscribe to the same feed; which goes first alternates
                            # (a keyframe just asked for by one may serve the other).
                            for kind in ("inspect", "bare") if i % 2 else ("bare", "inspect"):
                                if kind == "bare":
                                    bare.append(float(await page.evaluate(BARE, grant)))
                                elif (ms := float(await page.evaluate(INSPECT, code))) >= 0:
                                    publishing.append(ms)
                                await asyncio.sleep(0.3)
                            wall_id = wall.json()["wall_id"]
                            await api.delete(f"/api/inspection/wall/{wall_id}", headers=auth)
                            await _stopped(sites[code])
                    await browser.close()
            finally:
                srv.runtime.media_plane.uninstall()
                await orch.close()
                await registry.stop()
                await cluster.stop()
    report(runs, standby, publishing, bare)


def report(runs: int, standby: list[float], publishing: list[float], bare: list[float]) -> None:
    print(f"\nOnline inspection, {runs} runs (Chromium, central + 2 relays, one host)\n")
    head = f"{'what':<44}{'n':>4}{'p50':>8}{'p95':>8}{'min':>8}{'max':>8}  target"
    print(head)
    print("-" * len(head))
    rows = (
        ("inspect → first frame, standby site", standby, "≤ 1000 ms (goal 500)"),
        ("inspect → first frame, publishing site", publishing, "≤ 300 ms"),
        ("bare Janus subscribe → first frame", bare, "reference"),
    )
    for name, values, target in rows:
        if not values:
            print(f"{name:<44}{0:>4}  (no sample)")
            continue
        print(
            f"{name:<44}{len(values):>4}{statistics.median(values):>8.0f}{pct(values, 0.95):>8.0f}"
            f"{min(values):>8.0f}{max(values):>8.0f}  {target}"
        )
    print("\n(ms; standby: the site starts publishing only when asked.)")


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--sites", type=int, default=3, choices=range(1, len(SITES) + 1))
    args = ap.parse_args(argv)
    try:
        enter_isolated_netns()
    except PermissionError:
        print("note: not root, running without the isolated namespace", file=sys.stderr)
    asyncio.run(run(max(1, args.runs), args.sites))


if __name__ == "__main__":
    main()
