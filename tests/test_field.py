"""Field deployment in the multi-host lab, proven with Chromium on each commune PC.

One lab per module: control (this process, HTTPS on 198.51.100.10:443, site
sessions on .11:443), central, relay1 (Hà Nội), relay2 (Hồ Chí Minh City) and
coturn, each in its own namespace, configured from an inventory file. A chair
bot publishes stamped video at central. In each LAN (open, NAT, TCP-443-only) a
real Chromium opens the HTTPS join link, passes the self-test, joins, plays the
chair's program from its relay, is given the floor (a site on the other relay
sees and hears it), and is spot-checked. The tcp-only office does all of it
through TURN over TLS on 443. Plain HTTP to the control host is redirected.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, async_playwright

from diemcau.lab.browser import (
    FRAMES_JS,
    PROGRAM_PATH_JS,
    SELFTEST_PATH_JS,
    launch_chromium,
)
from diemcau.lab.deployment import LabDeployment
from diemcau.lab.meeting import FieldMeeting, field_meeting
from diemcau.lab.network import Lab
from diemcau.media.orchestrator import feed_id
from diemcau.sim.janus_bots import JanusTarget, ViewerBot
from tests.browser import lab_tls, shot, wait_for

pytestmark = [
    pytest.mark.media,
    pytest.mark.browser,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"),
]

# LAN -> (its site, a site on the other relay that watches the floor)
SITES = {"open": ("00004", "26740"), "nat": ("26734", "00091"), "tcp": ("00008", "27259")}


@dataclass
class Field:
    lab: Lab
    dep: LabDeployment
    m: FieldMeeting
    pw: Any


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def field(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Field]:
    tmp = tmp_path_factory.mktemp("field")
    codes = tuple(c for pair in SITES.values() for c in pair)
    with Lab(control_here=True) as lab:
        dep = LabDeployment(
            lab, tmp / "lab", {"relay1": ("01",), "relay2": ("79",)}, ca=lab_tls().ca
        )
        dep.prepare()
        await dep.start()
        try:
            async with (
                field_meeting(dep, tmp, codes, http_redirect_port=80) as m,
                async_playwright() as pw,
            ):
                yield Field(lab, dep, m, pw)
        finally:
            await dep.stop()


async def _browser(f: Field, lan: str) -> Browser:
    return await launch_chromium(f.pw, f.dep.spki_pins(), executable=str(f.dep.chromium_in(lan)))


async def _frames(page: Any, sel: str) -> int | None:
    n = int(await page.evaluate(FRAMES_JS, sel))
    return n if n > 0 else None


async def _viewer(f: Field, watcher: str, feed: int) -> ViewerBot:
    g = await f.m.orch.site_media_grant(watcher, f.m.meeting)
    bot = ViewerBot(JanusTarget.program_of(g), feed)
    await bot.start(timeout=15)
    return bot


@pytest.mark.parametrize("lan", ["open", "nat", "tcp"])
async def test_commune_pc_joins_plays_takes_the_floor_and_is_spot_checked(
    field: Field, lan: str
) -> None:
    f = field
    code, watcher = SITES[lan]
    browser = await _browser(f, lan)
    try:
        page = await (await browser.new_context(viewport={"width": 1280, "height": 760})).new_page()
        t0 = time.monotonic()
        await page.goto(f.m.srv.join_link(code))
        assert page.url.startswith("https://198.51.100.10/")
        await page.wait_for_selector("#enter:not([hidden])", timeout=20_000)
        await page.wait_for_function("() => document.querySelector('#preview').videoWidth > 0")
        await page.click("#netcheck")
        verdict = page.locator("[data-verdict]")
        await verdict.wait_for(timeout=30_000)
        checks = await page.inner_text("#checks")
        assert await verdict.get_attribute("data-verdict") in ("good", "fair"), checks
        path = await page.evaluate(SELFTEST_PATH_JS)
        if lan == "tcp":
            assert path["type"] == "relay" and path["relayProtocol"] == "tls", path
        else:
            assert path["type"] != "relay", path
        await shot(page, f"field-{lan}-selftest")

        # Join: the chair's program arrives from the site's relay on another host.
        await page.click("#enter")
        await wait_for(lambda: _frames(page, "#program"), timeout=30)
        joined = time.monotonic() - t0
        path = await page.evaluate(PROGRAM_PATH_JS)
        relay = f.m.orch.site_node(code)
        assert path["remote"].split(":")[0] in (f.lab.ip(relay.name), f.lab.ip("turn")), path
        if lan == "tcp":
            assert path["type"] == "relay" and path["relayProtocol"] == "tls", path
        await shot(page, f"field-{lan}-program")

        # The floor: a site on the other relay sees and hears this PC.
        async with f.m.client() as c:
            r = await c.post(
                f"/api/meetings/{f.m.meeting}/floor/grant", json={"site_codes": [code]}
            )
            assert r.is_success, r.text
        viewer = await _viewer(f, watcher, feed_id("site", code))
        try:
            # Chromium's fake camera carries no stamp: every decoded frame counts here.
            await wait_for(lambda: _async(_decoded(viewer) > 5), timeout=20)
            await wait_for(lambda: _async(viewer.stats.first_audio_at > 0), timeout=20)
        finally:
            await viewer.stop()
        async with f.m.client() as c:
            await c.post(f"/api/meetings/{f.m.meeting}/floor/revoke")

        # Spot-check: the console's subscription to the site's own feed on its relay.
        g = await f.m.orch.spot_check_grant(code)
        spot = ViewerBot(
            JanusTarget.watch_of(g),
            g["subscribe"]["feed_id"],
        )
        await spot.start(timeout=15)
        try:
            await wait_for(lambda: _async(_decoded(spot) > 5), timeout=20)
        finally:
            await spot.stop()
        assert joined < 30
    finally:
        await browser.close()


async def _async(value: bool) -> bool:
    return value


def _decoded(bot: ViewerBot) -> int:
    """Frames decoded, stamped or not (Chromium's fake camera carries no stamp)."""
    s = bot.stats
    return s.frames + s.bad_frames + s.unreadable_frames


async def test_plain_http_join_link_goes_to_https(field: Field) -> None:
    browser = await _browser(field, "nat")
    try:
        page = await browser.new_page()
        await page.goto("http://198.51.100.10/join")
        assert page.url == "https://198.51.100.10/join"
        await page.wait_for_selector("#join-form", timeout=10_000)
    finally:
        await browser.close()
    # The redirect listener never serves the page itself.
    async with httpx.AsyncClient(timeout=5) as c:
        r = await c.get("http://198.51.100.10/join", follow_redirects=False)
        assert r.status_code == 308 and r.headers["location"] == "https://198.51.100.10/join"
