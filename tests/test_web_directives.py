"""The directives page in a real Chromium: compose with an attachment and a live count,
issue, watch a site terminal acknowledge it live, drill down, remind, export; keyboard."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.browser import chromium, live_server, shot, staff_login, wait_for

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


async def test_issue_a_directive_and_see_a_site_acknowledge_it_live(tmp_path: Path) -> None:
    async with live_server(tmp_path, join_sites=("00004",)) as srv, chromium() as browser:
        page = await browser.new_page(viewport={"width": 1366, "height": 900})
        await staff_login(page, srv.base_url, "/directives", "chair")
        await page.wait_for_selector("#live[data-state=live]")
        await page.click("#new")
        await page.wait_for_selector("#view-compose:not([hidden])")
        # Issuing without a title points at the field.
        await page.click("#issue")
        assert await page.get_attribute("#compose [name=title]", "aria-invalid") == "true"
        await page.fill("#compose [name=title]", "Kiểm tra đê điều trước mùa mưa")
        await page.fill(
            "#compose [name=body]", "Các xã ven sông rà soát đê bao, báo cáo trước 17 giờ."
        )
        await page.select_option("#compose [name=priority]", "high")
        # The live count follows the target: Hà Nội's communes, then one more site by code.
        await page.check("#provinces input[value='01']")
        await page.wait_for_selector("#preview[data-total='4']")
        await page.fill("#compose [name=sites]", "26740")
        await page.wait_for_selector("#preview[data-total='5']")
        assert "2 tỉnh/thành" in await page.inner_text("#preview")
        # An attachment kept by the server; a refused type is said so and left out.
        bad = tmp_path / "virus.exe"
        bad.write_bytes(b"MZ\x90\x00")
        await page.set_input_files("#files", str(bad))
        await page.wait_for_selector("#compose-error:has-text('.exe')")
        good = tmp_path / "cong-van.pdf"
        good.write_bytes(PDF)
        await page.set_input_files("#files", str(good))
        await page.wait_for_selector("#attached li:has-text('cong-van.pdf')")
        await shot(page, "directives-compose")
        await page.click("#issue")
        await page.wait_for_selector(
            "#view-track:not([hidden]) [data-kpi=k_recipients] b:text('5')"
        )
        directive_id = int(page.url.rsplit("=", 1)[1])
        assert await page.inner_text("[data-kpi=k_acknowledged] b") == "0"
        link = await page.get_attribute("#track-files a", "href")
        assert link is not None
        async with httpx.AsyncClient(base_url=srv.base_url) as anon:
            r = await anon.get(link)  # the signed link opens without a login
            assert r.status_code == 200 and r.content == PDF

        # A commune opens its terminal, sees the directive and its attachment, acknowledges.
        site = await (await browser.new_context(viewport={"width": 1366, "height": 900})).new_page()
        await site.goto(srv.join_link("00004"))
        item = f"#messages li[data-id='{directive_id}']"
        await site.wait_for_selector(f"{item}.unread", timeout=10_000)
        assert await site.get_attribute(f"{item} a", "href") == link
        await site.click(f"{item} button")
        # The chair's tracking view counts it without a reload (staff stream event).
        await page.wait_for_selector("[data-kpi=k_acknowledged] b:text('1')", timeout=5000)
        await page.click("#prov-table button:has-text('Hà Nội')")
        row = "#drill-table tr[data-site='00004']"
        await page.wait_for_selector(f"{row}:has-text('✓')")
        await shot(page, "directives-tracking")
        # Remind the others: the sites not yet acknowledging are counted.
        await page.click("#remind")
        await page.wait_for_selector("#toast:has-text('Đã nhắc 4 điểm cầu')")
        # The list shows it with its acknowledgement rate; export works from the list.
        await page.click("#view-track a:has-text('Danh sách chỉ đạo')")
        await page.wait_for_selector(f"#list tr[data-directive='{directive_id}']:has-text('20%')")
        async with page.expect_download() as dl:
            await page.click("#list-export [data-export=csv]")
        path = await (await dl.value).path()
        text = Path(str(path)).read_bytes().decode("utf-8-sig")
        assert text.startswith("id,issued_at,title") and "Kiểm tra đê điều" in text
        await shot(page, "directives-list")
        await site.close()


async def test_directives_by_keyboard_in_english_and_an_officer_directs_its_communes(
    tmp_path: Path,
) -> None:
    async with live_server(tmp_path) as srv, chromium() as browser:
        page = await browser.new_page(viewport={"width": 1366, "height": 768})
        await staff_login(page, srv.base_url, "/directives", "hanoi")
        await page.click("#lang")
        assert await page.inner_text("h1") == "Directives"
        assert await page.is_hidden("[data-roles=admin]")  # no admin link for an officer
        await page.click("#new")
        await page.wait_for_selector("#view-compose:not([hidden])")
        # The officer's only province is preselected; no "whole country" choice.
        assert await page.is_hidden("#compose [name=country]")
        await page.wait_for_selector("#preview[data-total='4']")
        # Keyboard only: type the fields, tab to the issue button, press Enter.
        await page.focus("#compose [name=title]")
        await page.keyboard.type("Tỉnh chỉ đạo các xã")
        await page.keyboard.press("Tab")
        await page.keyboard.type("Rà soát hộ nghèo")
        await page.focus("#issue")
        await page.keyboard.press("Enter")
        await page.wait_for_selector(
            "#view-track:not([hidden]) [data-kpi=k_recipients] b:text('4')"
        )
        assert await page.is_hidden("#escalate")  # central staff escalate, not an officer
        await shot(page, "directives-officer-english")
        # The chair sees the officer's directive too; the HCMC side of it does not exist.
        async with httpx.AsyncClient(base_url=srv.base_url) as api:
            r = await api.post(
                "/api/auth/login", json={"username": "chair", "password": srv.staff_password}
            )
            auth = {"Authorization": "Bearer " + r.json()["token"]}
            rows = (await api.get("/api/command/directive-table", headers=auth)).json()["rows"]
            assert [row[2] for row in rows] == ["Tỉnh chỉ đạo các xã"]
        await wait_for(lambda: page.is_visible("#prov-table tbody tr"), timeout=5)
