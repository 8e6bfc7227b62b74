"""The site terminal in a real Chromium under the media rights (docs/media.md).

A program room's pin changes when another site of the relay loses its
credential: the terminal keeps playing, and when its subscription drops, its join
with the old grant is refused and it fetches a fresh grant by itself and plays
again. When its own credential is revoked, its program stops on the page at once.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from playwright.async_api import Page

from diemcau.actors import Actor
from diemcau.lab.browser import FRAMES_JS  # frames a <video> decoded, -1: none
from diemcau.media.orchestrator import room_id
from diemcau.media.rights import new_pin
from tests.browser import (
    chromium,
    live_server,
    media_cluster,
    shot,
    staff_login,
    video_playing,
    wait_for,
)

pytestmark = [pytest.mark.media, pytest.mark.browser]


async def _frames(page: Page) -> int:
    return int(await page.evaluate(FRAMES_JS, "#program"))


async def test_site_terminal_follows_a_new_pin_and_stops_when_revoked(tmp_path: Path) -> None:
    async with (
        live_server(tmp_path, join_sites=("26734",)) as srv,
        media_cluster(srv) as rig,
        chromium() as browser,
    ):
        ctx = await browser.new_context()
        chair = await ctx.new_page()
        await staff_login(chair, srv.base_url, "/chair", "chair")
        await chair.fill("#m-title", "Quyền truyền thông")
        await chair.select_option("#m-invite", label="Thành phố Hồ Chí Minh")
        await chair.click("#start-form button[type=submit]")
        await chair.wait_for_function(
            "() => window.diemcauChair.media && window.diemcauChair.media.pub !== null"
        )
        site = await ctx.new_page()
        await site.goto(srv.join_link("26734"))
        await site.wait_for_selector("#enter:not([hidden])", timeout=10_000)
        await site.click("#enter")
        await video_playing(site, "#program")
        old_pin = await site.evaluate("window.diemcauSite.media.grant.program.pin")
        assert old_pin

        # Another site of r2 loses its credential: r2's program room gets a new pin.
        [mid] = rig.orch.meetings
        await rig.orch.control("r2").set_pin(room_id("program", mid), new_pin())
        # Viewers already in the room keep watching (the pin guards joins) ...
        await video_playing(site, "#program")
        # ... until the terminal's subscription drops (its peer connection hangs up): it
        # joins again with the grant it holds, is refused (the old pin), fetches a fresh
        # grant by itself and plays again.
        await site.evaluate(
            "[...window.diemcauSite.media.subs.values()].forEach((s) => s.handle.hungup('test'))"
        )
        await site.wait_for_function(
            f"() => window.diemcauSite.media.grant.program.pin !== {old_pin!r}", timeout=20_000
        )
        await video_playing(site, "#program", timeout=20)
        await shot(site, "media-site-after-new-pin")

        # Its own credential is revoked: the program stops on the page.
        before = await _frames(site)
        t0 = time.monotonic()
        await srv.runtime.credentials.revoke(Actor.for_staff("admin", "admin"), "26734")
        await wait_for(lambda: _stopped(site, before), timeout=5)
        print(f"revoked site's program stopped on the page in {time.monotonic() - t0:.2f} s")
        await shot(site, "media-site-revoked")


async def _stopped(page: Page, before: int) -> bool:
    """The program shows nothing, or its frame count stands still for half a second."""
    n = await _frames(page)
    if n < 0:
        return True
    await page.wait_for_timeout(500)
    return await _frames(page) == n and n >= before
