"""The situation-reports page in a real Chromium: a missing report is listed, disappears
live when the commune files it, the revision history shows a correction; an officer
sees its province only; English and keyboard."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.browser import chromium, live_server, shot, staff_login
from tests.test_command_support import covid


async def _site_token(api: httpx.AsyncClient, join_code: str) -> dict[str, str]:
    r = await api.post("/api/auth/site-login", json={"join_code": join_code})
    assert r.status_code == 200, r.text
    return {"Authorization": "Bearer " + r.json()["token"]}


async def test_a_missing_report_is_listed_and_disappears_when_filed(tmp_path: Path) -> None:
    async with (
        live_server(tmp_path, join_sites=("00004", "00008")) as srv,
        chromium() as browser,
        httpx.AsyncClient(base_url=srv.base_url, timeout=10) as api,
    ):
        ngoc_ha = await _site_token(api, srv.join_codes["00008"])
        r = await api.post(
            "/api/command/reports", json={"schema": "covid19", "values": covid()}, headers=ngoc_ha
        )
        assert r.status_code == 200, r.text
        page = await browser.new_page(viewport={"width": 1366, "height": 900})
        await staff_login(page, srv.base_url, "/reports", "chair")
        await page.wait_for_selector("#live[data-state=live]")
        hn = "#prov-table tr[data-prov='01']"
        await page.wait_for_selector(hn)
        assert await page.inner_text("[data-kpi=k_missing] b") == "7"
        await page.click(f"{hn} button")
        missing = "#drill-table tr[data-site='00004'][data-status=missing]"
        await page.wait_for_selector(missing)
        assert await page.locator("#drill-table tbody tr").count() == 3  # 00004, 00091, 00256
        await shot(page, "reports-missing")
        # Ba Đình files from its office: the row leaves the list without a reload.
        ba_dinh = await _site_token(api, srv.join_codes["00004"])
        r = await api.post(
            "/api/command/reports",
            json={"schema": "covid19", "values": covid(deaths=1)},
            headers=ba_dinh,
        )
        assert r.status_code == 200, r.text
        await page.wait_for_selector(missing, state="detached", timeout=8000)
        await page.wait_for_selector("[data-kpi=k_missing] b:text('6')")
        assert "2" in await page.inner_text(f"{hn} td:nth-child(3)")
        # A correction by the commune, then its history from the "on time" list.
        r = await api.post(
            "/api/command/reports",
            json={"schema": "covid19", "values": covid(deaths=2), "note": "đếm lại"},
            headers=ba_dinh,
        )
        assert r.status_code == 200 and r.json()["revision"] == 2
        await page.select_option("#drill-state", "filed")
        await page.click("#drill-table tr[data-site='00004'] button")
        await page.wait_for_selector("#hist-table tbody tr:nth-child(2):has-text('deaths: 1 → 2')")
        assert "đếm lại" in await page.inner_text("#hist-table")
        await shot(page, "reports-history")
        # The export holds the same rows.
        async with page.expect_download() as dl:
            await page.click("#drill-export [data-export=csv]")
        text = Path(str(await (await dl.value).path())).read_bytes().decode("utf-8-sig")
        assert text.splitlines()[1].startswith("00004,Phường Ba Đình,filed")


async def test_reports_for_an_officer_in_english_by_keyboard(tmp_path: Path) -> None:
    async with live_server(tmp_path) as srv, chromium() as browser:
        page = await browser.new_page(viewport={"width": 1366, "height": 768})
        await staff_login(page, srv.base_url, "/reports", "hanoi")
        await page.wait_for_selector("#drill-table table")  # one province: opened at once
        assert await page.locator("#prov-table tbody tr").count() == 1
        assert "Hồ Chí Minh" not in await page.inner_text("main")
        await page.click("#lang")
        await page.wait_for_selector("#drill-h:has-text('Communes')")
        # Keyboard: focus the previous-period button and press Enter: the period moves back.
        before = await page.input_value("#period")
        await page.focus("#prev")
        await page.keyboard.press("Enter")
        await page.wait_for_function(
            f"() => document.querySelector('#period').value !== '{before}'"
        )
        assert "period=" in page.url
        await shot(page, "reports-officer-english")
