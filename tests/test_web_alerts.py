"""The alerts page in a real Chromium: an alert raised by a filing appears live with what
triggered it, is acknowledged with a note by keyboard, then leaves the active list
when a corrected report clears it; an officer sees its province's alerts only."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.browser import chromium, live_server, shot, staff_login
from tests.test_command_support import covid


async def _file(api: httpx.AsyncClient, join_code: str, deaths: int) -> None:
    r = await api.post("/api/auth/site-login", json={"join_code": join_code})
    auth = {"Authorization": "Bearer " + r.json()["token"]}
    r = await api.post(
        "/api/command/reports",
        json={"schema": "covid19", "values": covid(deaths=deaths)},
        headers=auth,
    )
    assert r.status_code == 200, r.text


async def test_alert_appears_is_acknowledged_with_a_note_and_clears(tmp_path: Path) -> None:
    async with (
        live_server(tmp_path, join_sites=("00004", "27004")) as srv,
        chromium() as browser,
        httpx.AsyncClient(base_url=srv.base_url, timeout=10) as api,
    ):
        page = await browser.new_page(viewport={"width": 1366, "height": 768})
        await staff_login(page, srv.base_url, "/alerts", "chair")
        await page.wait_for_selector("#live[data-state=live]")
        await page.wait_for_selector("#list td:has-text('Không có cảnh báo')")
        # Deaths above the threshold in Ba Đình: the alert arrives live.
        await _file(api, srv.join_codes["00004"], 7)
        row = "#list tr[data-kind=indicator_threshold]"
        await page.wait_for_selector(row, timeout=8000)
        assert "deaths = 7, vượt ngưỡng 5" in await page.inner_text(f"{row} .trigger")
        assert await page.get_attribute(f"{row} .trigger a", "href") is not None
        await _file(api, srv.join_codes["27004"], 8)
        await page.wait_for_selector("#list tbody tr:nth-child(2)", timeout=8000)
        # Filter by province: Hà Nội only.
        await page.select_option("#province", label="Thành phố Hà Nội")
        await page.wait_for_function(
            "() => document.querySelectorAll('#list tbody tr').length === 1"
        )
        # Acknowledge with a note, keyboard only.
        await page.focus(f"{row} button")
        await page.keyboard.press("Enter")
        await page.wait_for_selector("#ack-dialog[open]")
        await page.keyboard.type("Đã gọi điện cho xã, đã xác minh")
        await page.keyboard.press("Tab")
        await page.keyboard.press("Enter")
        await page.wait_for_selector(f"{row}:has-text('Đã gọi điện cho xã, đã xác minh')")
        assert "chair" in await page.inner_text(row)
        await shot(page, "alerts-acknowledged")
        # A corrected report clears it: gone from the active list, listed as past.
        await _file(api, srv.join_codes["00004"], 1)
        await page.wait_for_selector(row, state="detached", timeout=8000)
        await page.select_option("#filters [name=state]", "cleared")
        await page.wait_for_selector(f"{row}.cleared")
        await shot(page, "alerts-past")


async def test_alerts_for_an_officer_in_english(tmp_path: Path) -> None:
    async with (
        live_server(tmp_path, join_sites=("00004", "27004")) as srv,
        chromium() as browser,
        httpx.AsyncClient(base_url=srv.base_url, timeout=10) as api,
    ):
        await _file(api, srv.join_codes["00004"], 7)
        await _file(api, srv.join_codes["27004"], 9)
        page = await browser.new_page(viewport={"width": 1366, "height": 768})
        await staff_login(page, srv.base_url, "/alerts", "hanoi")
        await page.wait_for_selector("#list tr[data-kind]")
        assert await page.locator("#list tbody tr").count() == 1
        assert "Củ Chi" not in await page.inner_text("#list")
        assert await page.is_hidden("#province")  # no province filter for an officer
        await page.click("#lang")
        await page.wait_for_selector("#list th:has-text('Triggered by')")
        assert "above the threshold" in await page.inner_text("#list .trigger")
        await shot(page, "alerts-officer-english")
