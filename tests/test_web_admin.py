"""The administration page in a real Chromium: create a province officer who then signs
in, print a site's new sheet with its QR code (the new join link works, the old one
does not), save a site group the directives page offers, add a report form from a
JSON file after a refusal listed by field; tabs by keyboard; non-admins are turned away."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.browser import chromium, live_server, shot, staff_login

FLOOD = {
    "key": "flood",
    "label_vi": "Báo cáo lũ",
    "label_en": "Flood report",
    "indicators": [
        {"key": "households", "type": "int", "required": True, "label_vi": "Số hộ ngập",
         "label_en": "Flooded households"}
    ],
}  # fmt: skip


async def test_administration_main_paths(tmp_path: Path) -> None:
    staff = (
        ("admin", "admin", None),
        ("chair", "chair", None),
        ("hanoi", "province_officer", "01"),
    )
    async with (
        live_server(tmp_path, join_sites=("00004",), staff=staff) as srv,
        chromium() as browser,
        httpx.AsyncClient(base_url=srv.base_url, timeout=10) as api,
    ):
        page = await browser.new_page(viewport={"width": 1366, "height": 900})
        await staff_login(page, srv.base_url, "/admin", "admin")
        await page.wait_for_selector("#staff-table tr[data-user=hanoi]")
        # A new province officer for Hồ Chí Minh City, with a generated password.
        form = "#staff-new"
        await page.fill(f"{form} [name=username]", "lan")
        await page.fill(f"{form} [name=display_name]", "Nguyễn Thị Lan")
        await page.select_option(f"{form} [name=role]", "province_officer")
        await page.select_option(f"{form} [name=province_code]", "79")
        await page.click(f"{form} .gen-password")
        password = await page.input_value(f"{form} [name=password]")
        assert len(password) == 14
        await page.click(f"{form} button[type=submit]")
        await page.wait_for_selector("#staff-table tr[data-user=lan]:has-text('Hồ Chí Minh')")
        r = await api.post("/api/auth/login", json={"username": "lan", "password": password})
        assert r.status_code == 200 and r.json()["role"] == "province_officer"
        # Disable her: she can no longer sign in.
        await page.click("#staff-table [data-toggle=lan]")
        await page.wait_for_selector("#staff-table tr[data-user=lan].cleared")
        r = await api.post("/api/auth/login", json={"username": "lan", "password": password})
        assert r.status_code == 401
        await shot(page, "admin-staff")

        # Tabs by keyboard: → from staff to site credentials.
        await page.focus("#tab-staff")
        await page.keyboard.press("ArrowRight")
        await page.wait_for_selector("#sites-table tr[data-site='00004']")
        assert page.url.endswith("#sites")
        await page.click("#sites-table tr[data-site='00004'] button:has-text('in phiếu')")
        await page.click("#dlg-ok")
        await page.wait_for_selector("#sheet:not([hidden])")
        await page.wait_for_function("() => document.querySelector('#sheet-qr').naturalWidth > 100")
        link = await page.inner_text("#sheet-link")
        code = await page.inner_text("#sheet-code")
        assert link.endswith("#" + code)
        r = await api.post("/api/auth/site-login", json={"join_code": code})
        assert r.status_code == 200
        r = await api.post("/api/auth/site-login", json={"join_code": srv.join_codes["00004"]})
        assert r.status_code == 401
        await shot(page, "admin-sheet")

        # A saved group, then offered on the directives page.
        await page.click("#tab-groups")
        await page.fill("#group-form [name=name]", "Xã vùng lũ Hà Nội")
        await page.check("#group-provinces input[value='01']")
        await page.click("#group-form button[type=submit]")
        await page.wait_for_selector("#groups-table tr:has-text('Xã vùng lũ Hà Nội')")
        assert "4" in await page.inner_text("#groups-table tbody tr")

        # A report form from a JSON file: first refused by field, then added.
        await page.click("#tab-schemas")
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({**FLOOD, "key": "Lũ", "period": "monthly"}))
        await page.set_input_files("#schema-file", str(bad))
        await page.click("#schema-form button[type=submit]")
        await page.wait_for_selector("#schema-errors li[data-field=key]")
        assert await page.locator("#schema-errors li[data-field=period]").count() == 1
        await shot(page, "admin-schema-refused")
        good = tmp_path / "flood.json"
        good.write_text(json.dumps(FLOOD))
        await page.set_input_files("#schema-file", str(good))
        await page.click("#schema-form button[type=submit]")
        await page.wait_for_selector("#schemas-list details[data-schema=flood]")

        directives = await browser.new_page(viewport={"width": 1366, "height": 900})
        await staff_login(directives, srv.base_url, "/directives#new", "admin")
        await directives.wait_for_selector("#groups label:has-text('Xã vùng lũ Hà Nội')")
        await directives.check("#groups input")
        await directives.wait_for_selector("#preview[data-total='4']")


async def test_non_admins_are_turned_away(tmp_path: Path) -> None:
    async with live_server(tmp_path) as srv, chromium() as browser:
        page = await browser.new_page(viewport={"width": 1366, "height": 768})
        await staff_login(page, srv.base_url, "/admin", "chair")
        await page.wait_for_selector("#not-admin:not([hidden])")
        assert await page.is_hidden("#admin")
        assert await page.is_hidden("nav [data-roles=admin]")
        await page.click("#lang")
        assert "administrator accounts" in await page.inner_text("#not-admin")
        await shot(page, "admin-refused-english")
