"""The chair console's controls in a real Chromium (no media service needed)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.browser import HeartbeatSite, chromium, live_server, shot, staff_login

pytestmark = pytest.mark.browser


async def _site_client(base: str, join_code: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=base, timeout=10)
    r = await client.post("/api/auth/site-login", json={"join_code": join_code})
    assert r.status_code == 200, r.text
    client.headers["Authorization"] = "Bearer " + r.json()["token"]
    return client


async def test_chair_console_queue_next_mute_revoke_attendance(tmp_path: Path) -> None:
    codes = ("27004", "00004")
    async with live_server(tmp_path, join_sites=codes) as srv, chromium() as browser:
        hub = srv.runtime.presence
        beats = [HeartbeatSite(hub.url, srv.join_codes[c]) for c in codes]
        for beat in beats:
            await beat.start()
        page = await browser.new_page(viewport={"width": 1366, "height": 768})
        await staff_login(page, srv.base_url, "/chair", "chair")
        # Start a meeting for Hồ Chí Minh City and Hà Nội from the console form.
        await page.fill("#m-title", "Họp khẩn")
        await page.click("#start-form button[type=submit]")
        await page.wait_for_selector("#end:not([hidden])")
        meeting_id = await page.evaluate("window.diemcauChair.meeting.id")

        # Both sites join and raise their hands, Củ Chi first.
        sites = [await _site_client(srv.base_url, srv.join_codes[c]) for c in codes]
        for client in sites:
            r = await client.post(f"/api/site/meetings/{meeting_id}/join")
            assert r.status_code == 200, r.text
        for client in sites:
            r = await client.post(f"/api/site/meetings/{meeting_id}/hand")
            assert r.status_code == 200, r.text
        await page.wait_for_selector("#queue li[data-code='00004']", timeout=10_000)
        order = await page.eval_on_selector_all("#queue li", "els => els.map(e => e.dataset.code)")
        assert order == ["27004", "00004"]
        await page.wait_for_selector("[data-kpi=present] b:has-text('2')", timeout=10_000)
        hcm = await page.inner_text("#att-rows tr:has-text('Hồ Chí Minh')")
        assert hcm.split()[-3:] == ["1", "5", "0"], hcm  # present, invited, left
        await shot(page, "chair-queue")

        # "Next" gives the floor to the oldest hand; the queue moves up.
        await page.click("#next")
        await page.wait_for_selector("#floor-state:has-text('Xã Củ Chi')")
        await page.wait_for_selector("#queue li:first-child[data-code='00004']")
        # Mute all, then take the floor back.
        await page.click("#muteall")
        await page.wait_for_selector("#floor-state:has-text('tắt tiếng')")
        floor = (await sites[0].get("/api/site/meetings/current")).json()["floor"]
        assert floor["muted_all"] is True
        assert [s["code"] for s in floor["speakers"]] == ["27004"]
        await page.click("#revoke")
        await page.wait_for_selector("#floor-0-label:has-text('Chưa có điểm cầu phát biểu')")
        floor = (await sites[0].get("/api/site/meetings/current")).json()["floor"]
        assert floor["speakers"] == []
        await shot(page, "chair-after-revoke")

        # Keyboard: the queue's grant button is reachable and works with Enter.
        await page.focus("#queue li[data-code='00004'] button")
        await page.keyboard.press("Enter")
        await page.wait_for_selector("#floor-state:has-text('Phường Ba Đình')")
        for client in sites:
            await client.aclose()
        for beat in beats:
            await beat.close()
