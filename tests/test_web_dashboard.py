"""The command dashboard in a real Chromium: the canvas map, tree, KPIs, live state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.async_api import Page

from tests.browser import HeartbeatSite, chromium, live_server, shot, staff_login, wait_for

# The colour of a site's point on the canvas, read back from the pixels under it.
_PIXEL = """(code) => {
  const { map, model } = window.diemcauDashboard;
  const i = model.byCode.get(code);
  const d = map.dpr, x = Math.round(map.sx(i) * d), y = Math.round(map.sy(i) * d);
  const p = map.ctx.getImageData(x, y, 1, 1).data;
  return [p[0], p[1], p[2]];
}"""


async def _pixel(page: Page, code: str) -> Any:
    return await page.evaluate(_PIXEL, code)


def _is(rgb: list[int], name: str) -> bool:
    r, g, b = rgb
    if name == "online":  # #1e8a3c
        return g > 110 and r < 80 and b < 100
    if name == "offline":  # #c62828
        return r > 160 and g < 80 and b < 80
    return False


async def test_dashboard_draws_every_site(tmp_path: Path) -> None:
    async with live_server(tmp_path, dataset="vn-2025") as srv, chromium() as browser:
        page = await browser.new_page(viewport={"width": 1366, "height": 768})
        await staff_login(page, srv.base_url, "/dashboard", "chair")
        await page.wait_for_function("Number(document.querySelector('#map').dataset.draws||0) > 0")
        drawn = await page.evaluate("window.diemcauDashboard.model.n")
        assert drawn == 3321 + 34 + 1  # communes, provinces, the chair site
        assert await page.locator("#tree > li").count() == 34
        assert await page.inner_text("[data-kpi=k_sites] b") == "3.356"
        await shot(page, "dashboard-vn2025")


async def test_dashboard_shows_a_cut_site_offline(tmp_path: Path) -> None:
    # Far-apart communes, so no neighbour's point covers theirs on the canvas.
    codes = ("27259", "27004", "00256")
    async with (
        live_server(tmp_path, join_sites=codes) as srv,
        chromium() as browser,
    ):
        hub = srv.runtime.services["presence"]
        sites = [HeartbeatSite(hub.url, srv.join_codes[c]) for c in codes]
        for site in sites:
            await site.start()
        page = await browser.new_page(viewport={"width": 1366, "height": 768})
        await staff_login(page, srv.base_url, "/dashboard", "chair")
        await page.wait_for_function("Number(document.querySelector('#map').dataset.draws||0) > 0")
        for code in codes:
            await wait_for(lambda c=code: _online(page, c), timeout=10)  # type: ignore[misc]
        assert await page.inner_text("[data-kpi=k_online] b") == "3"
        await shot(page, "dashboard-live-online")

        # Cut one site silently: no close frame, no more heartbeats.
        sites[1].silence()
        await wait_for(lambda: _offline(page, "27004"), timeout=6)
        assert await _online(page, "27259")
        assert await _online(page, "00256")
        assert await page.inner_text("[data-kpi=k_online] b") == "2"
        # The tree row of its province counts it too.
        row = "#tree li[data-prov='79'] .pcount"
        await wait_for(lambda: _text_starts(page, row, "1 / 5"), timeout=3)
        await shot(page, "dashboard-site-offline")
        for site in sites:
            await site.close()


async def _text_starts(page: Page, selector: str, prefix: str) -> bool:
    return (await page.inner_text(selector)).startswith(prefix)


async def _online(page: Page, code: str) -> bool:
    return _is(await _pixel(page, code), "online")


async def _offline(page: Page, code: str) -> bool:
    return _is(await _pixel(page, code), "offline")


async def test_dashboard_province_officer_sees_only_their_province(tmp_path: Path) -> None:
    async with live_server(tmp_path) as srv, chromium() as browser:
        page = await browser.new_page(viewport={"width": 1366, "height": 768})
        await staff_login(page, srv.base_url, "/dashboard", "hanoi")
        await page.wait_for_function("Number(document.querySelector('#map').dataset.draws||0) > 0")
        names = await page.evaluate("window.diemcauDashboard.model.names")
        assert sorted(names) == sorted(
            [
                "Thành phố Hà Nội",
                "Phường Ba Đình",
                "Phường Ngọc Hà",
                "Phường Hoàn Kiếm",
                "Xã Sóc Sơn",
            ]
        )
        assert await page.locator("#tree > li").count() == 1
        await shot(page, "dashboard-province-officer")


async def test_dashboard_search_select_and_keyboard(tmp_path: Path) -> None:
    async with live_server(tmp_path) as srv, chromium() as browser:
        page = await browser.new_page(viewport={"width": 1366, "height": 768})
        await staff_login(page, srv.base_url, "/dashboard", "chair")
        await page.wait_for_function("Number(document.querySelector('#map').dataset.draws||0) > 0")
        # Diacritics-insensitive search selects the site and opens its card.
        await page.fill("#find-q", "ben thanh")
        await page.press("#find-q", "Enter")
        await page.wait_for_selector("#sitecard:not([hidden])")
        assert "Bến Thành" in await page.inner_text("#sitecard h3")
        link = await page.get_attribute("#sitecard a.button", "href")
        assert link == "/chair#spot=26740"
        # Keyboard: Escape on the focused map closes the card; English toggle works.
        await page.keyboard.press("Escape")
        await page.wait_for_selector("#sitecard", state="hidden")
        await page.click("#lang")
        assert await page.inner_text("h1") == "Command dashboard"
        await shot(page, "dashboard-english")
