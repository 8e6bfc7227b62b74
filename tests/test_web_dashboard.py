"""The command dashboard in a real Chromium: the canvas map, tree, KPIs, scope."""

from __future__ import annotations

from pathlib import Path

from tests.browser import chromium, live_server, shot, staff_login


async def test_dashboard_draws_every_site(tmp_path: Path) -> None:
    async with live_server(tmp_path, dataset="vn-2025") as srv, chromium() as browser:
        page = await browser.new_page(viewport={"width": 1366, "height": 768})
        await staff_login(page, srv.base_url, "/dashboard", "chair")
        await page.wait_for_function("Number(document.querySelector('#map').dataset.draws||0) > 0")
        count = await page.evaluate("document.querySelectorAll('#tree > li').length")
        assert count == 34
        await shot(page, "dashboard-vn2025")


async def test_dashboard_hover_and_select(tmp_path: Path) -> None:
    async with live_server(tmp_path, dataset="vn-2025") as srv, chromium() as browser:
        page = await browser.new_page(viewport={"width": 1366, "height": 768})
        await staff_login(page, srv.base_url, "/dashboard", "chair")
        await page.wait_for_function("Number(document.querySelector('#map').dataset.draws||0) > 0")
        await page.fill("#find-q", "ben thanh")
        await page.press("#find-q", "Enter")
        await page.wait_for_selector("#sitecard:not([hidden])")
        assert "Bến Thành" in await page.inner_text("#sitecard h3")
        box = await page.eval_on_selector(
            "#map",
            "c => { const r = c.getBoundingClientRect(); "
            "return [r.x + r.width / 2, r.y + r.height / 2]; }",
        )
        await page.mouse.move(box[0] + 1, box[1] + 1)
        await page.wait_for_selector("#tip:not([hidden])")
        await shot(page, "dashboard-select")
