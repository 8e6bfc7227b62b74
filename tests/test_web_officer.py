"""A province officer in a real Chromium cannot see another province on any command page:
directives, reports, charts, alerts, exports, nor by editing the page's address; its own
directive reaches its communes only."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.browser import chromium, live_server, shot, staff_login
from tests.test_command_support import covid

# What only Hồ Chí Minh City's data holds.
HCM_MARKERS = ("Hồ Chí Minh", "Củ Chi", "Bến Thành", "Cần Giờ", "Sài Gòn", "Chỉ thị riêng TP.HCM")


async def test_an_officer_cannot_see_another_province(tmp_path: Path) -> None:
    async with (
        live_server(tmp_path, join_sites=("27004", "00004")) as srv,
        chromium() as browser,
        httpx.AsyncClient(base_url=srv.base_url, timeout=10) as api,
    ):
        r = await api.post(
            "/api/auth/login", json={"username": "chair", "password": srv.staff_password}
        )
        chair = {"Authorization": "Bearer " + r.json()["token"]}
        r = await api.post(
            "/api/command/directives",
            json={"title": "Chỉ thị riêng TP.HCM", "body": "x", "target": {"provinces": ["79"]}},
            headers=chair,
        )
        hcm_directive = r.json()["id"]
        for code, deaths in (("27004", 9), ("00004", 8)):
            r = await api.post("/api/auth/site-login", json={"join_code": srv.join_codes[code]})
            site = {"Authorization": "Bearer " + r.json()["token"]}
            r = await api.post(
                "/api/command/reports",
                json={"schema": "covid19", "values": covid(deaths=deaths, new_cases=deaths)},
                headers=site,
            )
            assert r.status_code == 200, r.text
        hcm_province = next(
            p[0]
            for p in (await api.get("/api/web/geo", headers=chair)).json()["provinces"]
            if p[1] == "79"
        )

        page = await browser.new_page(viewport={"width": 1366, "height": 900})
        await staff_login(page, srv.base_url, "/directives", "hanoi")

        async def clean(what: str) -> None:
            text = await page.inner_text("main")
            leaked = [m for m in HCM_MARKERS if m in text]
            assert not leaked, f"{what} shows {leaked}"

        # Directives: the chair's HCMC directive is not listed, nor reachable by address.
        await page.wait_for_selector("#list table")
        await clean("the directive list")
        await page.goto(f"{srv.base_url}/directives#d={hcm_directive}")
        await page.wait_for_selector("#track-h:has-text('does not exist')")
        await clean("a directive of another province")
        # Its own directive to its communes.
        await page.goto(srv.base_url + "/directives#new")
        await page.wait_for_selector("#preview[data-total='4']")
        await page.fill("#compose [name=title]", "Tỉnh rà soát hộ nghèo")
        await page.fill("#compose [name=body]", "Các xã báo cáo trước thứ Sáu")
        await page.fill("#compose [name=sites]", "27004")  # a commune of another province
        await page.wait_for_selector("#preview .error")
        await page.click("#issue")
        # Another province's commune is answered like a code that does not exist.
        await page.wait_for_selector("#compose-error:has-text('phạm vi của bạn')")
        await page.fill("#compose [name=sites]", "")
        await page.wait_for_selector("#preview[data-total='4']")
        await page.click("#issue")
        await page.wait_for_selector(
            "#view-track:not([hidden]) [data-kpi=k_recipients] b:text('4')"
        )
        await clean("its own directive")

        # Reports: its province only, even when the address names another.
        await page.goto(f"{srv.base_url}/reports#schema=covid19&province={hcm_province}")
        await page.wait_for_selector("#prov-table tbody tr")
        assert await page.locator("#prov-table tbody tr").count() == 1
        await page.wait_for_selector("#drill-table table")
        await clean("the reports page")

        # Charts: its communes on the map, its province in the rankings.
        await page.goto(srv.base_url + "/charts")
        await page.wait_for_selector("#top-commune tbody tr[data-code]")
        await clean("the charts page")
        names = await page.evaluate("window.diemcauCharts.model.names")
        assert not any(m in n for n in names for m in HCM_MARKERS)

        # Alerts: Ba Đình's, not Củ Chi's; the export likewise.
        await page.goto(srv.base_url + "/alerts")
        await page.wait_for_selector("#list tr[data-kind=indicator_threshold]")
        assert await page.locator("#list tbody tr").count() == 1
        await clean("the alerts page")
        async with page.expect_download() as dl:
            await page.click("#export [data-export=csv]")
        text = Path(str(await (await dl.value).path())).read_bytes().decode("utf-8-sig")
        assert "00004" in text and not any(m in text for m in HCM_MARKERS)
        await shot(page, "officer-alerts")
