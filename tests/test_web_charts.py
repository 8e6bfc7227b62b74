"""The charts page in a real Chromium: a filed value shows on the national chart, on a
commune's chart (read with the keyboard), on the map and in the top-N list; the
province bubbles; an officer's page holds its province only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Page

from tests.browser import chromium, live_server, shot, staff_login, wait_for
from tests.test_command_support import covid

# The colour under a commune's point on the charts map.
_PIXEL = """(code) => {
  const { map, model } = window.diemcauCharts;
  const i = model.byCode.get(code);
  const d = map.dpr, x = Math.round(map.sx(i) * d), y = Math.round(map.sy(i) * d);
  const p = map.ctx.getImageData(x, y, 1, 1).data;
  return [p[0], p[1], p[2]];
}"""


async def _pixel(page: Page, code: str) -> Any:
    return await page.evaluate(_PIXEL, code)


async def test_a_chart_shows_a_filed_value(tmp_path: Path) -> None:
    async with (
        live_server(tmp_path, join_sites=("27004", "00004")) as srv,
        chromium() as browser,
        httpx.AsyncClient(base_url=srv.base_url, timeout=10) as api,
    ):
        for code, cases, zone in (("27004", 37, "red"), ("00004", 5, "green")):
            r = await api.post("/api/auth/site-login", json={"join_code": srv.join_codes[code]})
            auth = {"Authorization": "Bearer " + r.json()["token"]}
            r = await api.post(
                "/api/command/reports",
                json={"schema": "covid19", "values": covid(new_cases=cases, zone_level=zone)},
                headers=auth,
            )
            assert r.status_code == 200, r.text
        page = await browser.new_page(viewport={"width": 1366, "height": 900})
        await staff_login(page, srv.base_url, "/charts", "chair")
        # The national line ends at today's total, 42.
        await page.wait_for_selector(
            "#chart svg circle title:text-matches(': 42$')", state="attached"
        )
        # The map colours Củ Chi (37, the period's maximum) dark red, Ba Đình (5) light.
        await page.wait_for_selector("#map[data-sites='2']")
        dark = await wait_for(lambda: _near(page, "27004", (0xA5, 0x0F, 0x15)), timeout=5)
        light = await wait_for(lambda: _near(page, "00004", (0xFE, 0xE5, 0xD9)), timeout=5)
        assert dark and light
        # The top communes list starts with Củ Chi.
        first = "#top-commune tbody tr:first-child"
        await page.wait_for_selector(f"{first}[data-code='27004']")
        assert "37" in await page.inner_text(first)
        # One commune's chart, chosen by typing its name without diacritics, read by keyboard.
        await page.fill("#commune", "cu chi")
        await page.dispatch_event("#commune", "change")
        await page.wait_for_selector("#series-title:has-text('Xã Củ Chi')")
        await page.focus("#chart svg")
        await page.keyboard.press("End")
        await page.wait_for_selector("#chart .readout:has-text('37')")
        await shot(page, "charts-commune")
        # Bubbles: one per province, sized by the province's total.
        await page.select_option("#mode", "bubbles")
        await page.wait_for_selector("#legend:has-text('Tổng của tỉnh/thành')")
        bubbles = sorted(await page.evaluate("[...window.diemcauCharts.bubbles.values()]"))
        assert bubbles == [5, 37]
        # The data table under the chart exports what it shows.
        await page.click("details summary")
        async with page.expect_download() as dl:
            await page.click("#series-export [data-export=csv]")
        text = Path(str(await (await dl.value).path())).read_bytes().decode("utf-8-sig")
        assert text.splitlines()[0] == "period,value" and text.splitlines()[-1].endswith(",37")
        await shot(page, "charts-bubbles")


async def _near(page: Page, code: str, rgb: tuple[int, int, int]) -> bool:
    got = await _pixel(page, code)
    return all(abs(a - b) <= 8 for a, b in zip(got, rgb, strict=True))


async def test_charts_for_an_officer_hold_its_province_only(tmp_path: Path) -> None:
    async with live_server(tmp_path) as srv, chromium() as browser:
        page = await browser.new_page(viewport={"width": 1366, "height": 768})
        await staff_login(page, srv.base_url, "/charts", "hanoi")
        await page.wait_for_selector("#chart svg")
        names = await page.evaluate("window.diemcauCharts.model.names")
        assert "Xã Củ Chi" not in names and "Phường Ba Đình" in names
        options = await page.locator("#where option").all_inner_texts()
        assert options == ["Cả tỉnh", "Một xã/phường…"]
        await page.click("#lang")
        await page.wait_for_selector("#series-title:has-text('Whole province')")
        await shot(page, "charts-officer-english")
