"""The command dashboard in a real Chromium: the canvas map, tree, KPIs, live state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
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


# Flip 1,000 sites online in one delta and count the redraws that follow.
_BURST = """async () => {
  const { map, model } = window.diemcauDashboard;
  const before = map.drawCount;
  const changes = [];
  for (let i = 0; i < 1000; i++) changes.push([i, "online"]);
  model.emit(model.apply(changes));
  for (let k = 0; k < 3; k++) await new Promise((r) => requestAnimationFrame(r));
  return { draws: map.drawCount - before, ms: map.lastDrawMs, online: model.totals.online };
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
        await page.wait_for_function(
            "() => Number(document.querySelector('#map').dataset.draws||0) > 0"
        )
        drawn = await page.evaluate("window.diemcauDashboard.model.n")
        assert drawn == 3321 + 34 + 1  # communes, provinces, the chair site
        assert await page.locator("#tree > li").count() == 34
        assert await page.inner_text("[data-kpi=k_sites] b") == "3.356"
        # The staff stream is live: no poll or first snapshot lands during the burst.
        await page.wait_for_selector("#live[data-state=live]")
        # A burst of 1,000 state changes (a province losing power) costs one
        # redraw of every point on the next animation frame, not one per change.
        burst = await page.evaluate(_BURST)
        assert burst["draws"] == 1, burst
        assert burst["online"] == 1000, burst
        print(f"redraw of 3,356 sites after a 1,000-site burst: {burst['ms']:.1f} ms")
        await shot(page, "dashboard-vn2025")


async def test_dashboard_shows_a_cut_site_offline(tmp_path: Path) -> None:
    # Far-apart communes, so no neighbour's point covers theirs on the canvas.
    codes = ("27259", "27004", "00256")
    async with (
        live_server(tmp_path, join_sites=codes) as srv,
        chromium() as browser,
    ):
        hub = srv.runtime.presence
        sites = [HeartbeatSite(hub.url, srv.join_codes[c]) for c in codes]
        for site in sites:
            await site.start()
        # A live meeting with these sites: a site cut during it raises an alert.
        async with httpx.AsyncClient(base_url=srv.base_url, timeout=10) as api:
            token = await _login(api, "chair", srv.staff_password)
            auth = {"Authorization": "Bearer " + token}
            r = await api.post(
                "/api/meetings",
                json={"title": "Giao ban", "invite": {"sites": list(codes)}},
                headers=auth,
            )
            assert r.status_code == 201, r.text
            r = await api.post(f"/api/meetings/{r.json()['id']}/start", headers=auth)
            assert r.status_code == 200, r.text

        page = await browser.new_page(viewport={"width": 1366, "height": 768})
        await staff_login(page, srv.base_url, "/dashboard", "chair")
        await page.wait_for_selector("#live[data-state=live]")  # the staff stream, not polling
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
        # And the alerts list names it (rule: a site offline during a live meeting).
        await page.wait_for_selector("#alerts li[data-alert]:has-text('27004')", timeout=10_000)
        await shot(page, "dashboard-site-offline")
        for site in sites:
            await site.close()


async def test_dashboard_colours_the_map_by_an_indicator(tmp_path: Path) -> None:
    async with live_server(tmp_path, join_sites=("27259", "27004")) as srv, chromium() as browser:
        async with httpx.AsyncClient(base_url=srv.base_url, timeout=10) as api:
            for code, zone in (("27259", "green"), ("27004", "red")):
                r = await api.post("/api/auth/site-login", json={"join_code": srv.join_codes[code]})
                token = r.json()["token"]
                values = {"new_cases": 3, "under_treatment": 1, "deaths": 0, "zone_level": zone}
                r = await api.post(
                    "/api/command/reports",
                    json={"schema": "covid19", "values": values},
                    headers={"Authorization": "Bearer " + token},
                )
                assert r.status_code == 200, r.text
        page = await browser.new_page(viewport={"width": 1366, "height": 768})
        await staff_login(page, srv.base_url, "/dashboard", "chair")
        await page.wait_for_function(
            "() => Number(document.querySelector('#map').dataset.draws||0) > 0"
        )
        await page.wait_for_selector(
            "#colorby option[value='covid19|zone_level']", state="attached"
        )
        await page.select_option("#colorby", "covid19|zone_level")
        await page.wait_for_selector("#legend:has-text('Cấp độ dịch')")
        # #d7191c (red zone) and #2e9d4a (green zone), read back from the canvas.
        red = await wait_for(lambda: _pixel_is(page, "27004", (0xD7, 0x19, 0x1C)), timeout=5)
        green = await wait_for(lambda: _pixel_is(page, "27259", (0x2E, 0x9D, 0x4A)), timeout=5)
        assert red and green
        await shot(page, "dashboard-indicator")


async def _pixel_is(page: Page, code: str, rgb: tuple[int, int, int]) -> bool:
    got = await _pixel(page, code)
    return all(abs(a - b) <= 6 for a, b in zip(got, rgb, strict=True))


async def _login(api: httpx.AsyncClient, username: str, password: str) -> str:
    r = await api.post("/api/auth/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


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
        await page.wait_for_function(
            "() => Number(document.querySelector('#map').dataset.draws||0) > 0"
        )
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
        await page.wait_for_function(
            "() => Number(document.querySelector('#map').dataset.draws||0) > 0"
        )
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


# A 1x1 PNG of rgb(40, 90, 200) standing in for a deployment's tile server.
_TILE = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGPQiDoBAAH4AUspz9deAAAAAElFTkSuQmCC"
)


async def test_dashboard_draws_optional_tiles_under_the_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIEMCAU_TILE_URL", _TILE + "#{z}/{x}/{y}")
    async with live_server(tmp_path) as srv, chromium() as browser:
        page = await browser.new_page(viewport={"width": 1366, "height": 768})
        await staff_login(page, srv.base_url, "/dashboard", "chair")
        await page.wait_for_function(
            "() => Number(document.querySelector('#map').dataset.draws||0) > 0"
        )
        # An empty corner of the map shows the tile; a site's point stays on top.
        corner = """() => { const { map } = window.diemcauDashboard;
          const p = map.ctx.getImageData(5 * map.dpr, 200 * map.dpr, 1, 1).data;
          return [p[0], p[1], p[2]]; }"""

        async def tiled() -> bool:
            rgb: list[int] = await page.evaluate(corner)
            return all(abs(a - b) < 8 for a, b in zip(rgb, (40, 90, 200), strict=True))

        await wait_for(tiled, timeout=5)
        assert not await _pixel_is(page, "27004", (40, 90, 200))
        await shot(page, "dashboard-tiles")
