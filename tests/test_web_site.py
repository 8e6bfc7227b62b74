"""The site terminal in a real Chromium: join link, self-test, meeting, floor, inbox, reconnect."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Page

from tests.browser import LiveServer, chromium, live_server, shot, wait_for


async def _staff(srv: LiveServer, username: str = "chair") -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=srv.base_url, timeout=10)
    r = await client.post(
        "/api/auth/login", json={"username": username, "password": srv.staff_password}
    )
    assert r.status_code == 200, r.text
    client.headers["Authorization"] = "Bearer " + r.json()["token"]
    return client


async def _start_meeting(chair: httpx.AsyncClient, codes: list[str]) -> dict[str, Any]:
    r = await chair.post(
        "/api/meetings",
        json={"title": "Họp trực tuyến phòng chống bão số 3", "invite": {"sites": codes}},
    )
    assert r.status_code == 201, r.text
    meeting: dict[str, Any] = r.json()
    r = await chair.post(f"/api/meetings/{meeting['id']}/start")
    assert r.status_code == 200, r.text
    return meeting


async def _visible(page: Page, selector: str) -> bool:
    return await page.is_visible(selector)


async def test_site_terminal_join_meeting_floor_inbox_reconnect(tmp_path: Path) -> None:
    async with (
        live_server(tmp_path, join_sites=("26734", "00004")) as srv,
        chromium() as browser,
    ):
        chair = await _staff(srv)
        ctx = await browser.new_context(viewport={"width": 1366, "height": 768})
        page = await ctx.new_page()
        # A bad code is refused with a clear message and no session.
        await page.goto(srv.base_url + "/join#26734:not-the-secret")
        await page.wait_for_selector("#join:not([hidden])")
        assert "không đúng" in await page.inner_text("#join-error")

        await page.goto(srv.base_url + "/site")  # the saved bad code is not reused
        await page.goto(srv.join_link("26734"))
        await page.wait_for_selector("#setup:not([hidden])")
        assert "#" not in page.url  # the secret left the address bar
        await page.wait_for_selector("#conn[data-state=online]")
        # Self-test: devices listed, camera preview playing, microphone level moving.
        await page.wait_for_function("() => document.querySelector('#preview').videoWidth > 0")
        assert await page.locator("#cam option").count() >= 1
        await page.wait_for_function("() => (window.diemcauSite.micLevel || 0) > 3")
        await page.click("#tone")
        await page.wait_for_selector("#tone-state:has-text('Đang phát')")
        # Without a media service the network check says so plainly.
        await page.click("#netcheck")
        verdict = page.locator("[data-verdict]")
        await verdict.wait_for()
        assert await verdict.get_attribute("data-verdict") == "bad"
        await shot(page, "site-setup")

        meeting = await _start_meeting(chair, ["26734", "00004"])
        await page.wait_for_selector("#enter:not([hidden])", timeout=5000)
        await page.click("#enter")
        await page.wait_for_selector("#meeting:not([hidden])")
        assert "bão số 3" in await page.inner_text("#meeting-h")

        # Raise a hand: place 1 in the queue, seen by the chair. The HTTP session
        # token is made invalid first (as after its hour): the terminal renews it.
        await page.evaluate("window.diemcauSite.httpToken = 'expired.token'")
        await page.click("#hand")
        await page.wait_for_selector("#handstate:has-text('thứ tự 1')")
        queue = (await chair.get(f"/api/meetings/{meeting['id']}/queue")).json()
        assert [e["code"] for e in queue] == ["26734"], queue

        # The chair grants the floor: the site is on air.
        r = await chair.post(
            f"/api/meetings/{meeting['id']}/floor/grant", json={"site_codes": ["26734"]}
        )
        assert r.status_code == 200, r.text
        await page.wait_for_selector("#banner-onair:not([hidden])", timeout=5000)
        assert await page.evaluate("window.diemcauSite.stream.getAudioTracks()[0].enabled")
        await shot(page, "site-on-air")

        # Revoke and mute all: the on-air banner goes, the imposed mute shows.
        r = await chair.post(f"/api/meetings/{meeting['id']}/floor/revoke", json={})
        assert r.status_code == 200, r.text
        r = await chair.post(f"/api/meetings/{meeting['id']}/floor/mute-all")
        assert r.status_code == 200, r.text
        await page.wait_for_selector("#banner-muted:not([hidden])", timeout=5000)
        assert await page.is_hidden("#banner-onair")
        assert not await page.evaluate("window.diemcauSite.stream.getAudioTracks()[0].enabled")

        # A conclusion arrives and is acknowledged.
        r = await chair.post(
            f"/api/meetings/{meeting['id']}/conclusions",
            json={"body": "Các xã ven biển sơ tán dân trước 17 giờ."},
        )
        assert r.status_code == 201, r.text
        conclusion_id = r.json()["id"]
        await page.wait_for_selector("#messages li.unread", timeout=5000)
        await page.click("#messages li.unread button")
        await page.wait_for_selector("#messages li:not(.unread) .ok")
        status = (await chair.get(f"/api/conclusions/{conclusion_id}/status")).json()
        assert [a.get("code") for a in status["acknowledged"]] == ["26734"], status
        await shot(page, "site-inbox")

        # The control session is cut: the banner shows, then the terminal recovers alone.
        hub = srv.runtime.presence
        site_id = next(sid for sid, info in hub.site_infos().items() if info.code == "26734")
        hub.close_site(site_id, "test cut")
        await page.wait_for_selector("#banner-reconnect:not([hidden])", timeout=5000)
        # Sent while the terminal is away (it waits about a second before it returns):
        # it must arrive through the resume by sequence number, not live.
        assert not hub.is_online(site_id)
        r = await chair.post(f"/api/meetings/{meeting['id']}/floor/allow-unmute")
        assert r.status_code == 200, r.text
        await shot(page, "site-reconnecting")
        await page.wait_for_selector("#banner-reconnect", state="hidden", timeout=10000)
        await wait_for(lambda: _online(srv, site_id), timeout=5)
        await page.wait_for_selector("#banner-muted", state="hidden", timeout=5000)
        assert not await page.is_disabled("#selfmute")

        # The chair ends the meeting: the terminal goes back to its waiting screen.
        r = await chair.post(f"/api/meetings/{meeting['id']}/end")
        assert r.status_code == 200, r.text
        await page.wait_for_selector("#setup:not([hidden])", timeout=5000)
        assert "kết thúc" in await page.inner_text("#meeting-state")
        assert await page.is_hidden("#enter")
        await chair.aclose()


async def _online(srv: LiveServer, site_id: int) -> bool:
    return bool(srv.runtime.presence.is_online(site_id))


async def test_site_terminal_receives_acknowledges_and_completes_a_directive(
    tmp_path: Path,
) -> None:
    async with live_server(tmp_path, join_sites=("27004",)) as srv, chromium() as browser:
        chair = await _staff(srv)
        # A directive issued before the terminal opens is in its inbox when it does.
        r = await chair.post(
            "/api/command/directives",
            json={
                "title": "Rà soát hộ dân vùng trũng",
                "body": "Báo cáo số hộ cần sơ tán trước 16 giờ.",
                "priority": "urgent",
                "target": {"sites": ["27004"]},
            },
        )
        assert r.status_code == 200, r.text
        first = r.json()["id"]
        page = await (await browser.new_context(viewport={"width": 1366, "height": 900})).new_page()
        await page.goto(srv.join_link("27004"))
        await page.wait_for_selector(f"#messages li[data-id='{first}'].unread", timeout=10_000)
        assert "Khẩn" in await page.inner_text(f"#messages li[data-id='{first}']")
        # One issued while it is open arrives live over the control session.
        r = await chair.post(
            "/api/command/directives",
            json={
                "title": "Kiểm tra hệ thống loa truyền thanh",
                "body": "Phát thông báo bão lúc 18 giờ.",
                "target": {"sites": ["27004"]},
            },
        )
        assert r.status_code == 200, r.text
        second = r.json()["id"]
        await page.wait_for_selector(f"#messages li[data-id='{second}'].unread", timeout=5000)
        await page.click(f"#messages li[data-id='{first}'] button")
        page.once("dialog", lambda d: d.accept("Đã sơ tán 42 hộ"))  # type: ignore[arg-type]
        await page.click(f"#messages li[data-id='{first}'] button:has-text('hoàn thành')")
        await page.wait_for_selector(f"#messages li[data-id='{first}']:has-text('Đã hoàn thành')")
        await shot(page, "site-directives")
        r = await chair.get(f"/api/command/directives/{first}/recipients")
        assert r.status_code == 200, r.text
        rows = r.json()
        rows = rows if isinstance(rows, list) else rows.get("items", rows.get("recipients", []))
        (row,) = [x for x in rows if x.get("code") == "27004" or x.get("site_code") == "27004"]
        assert row.get("completed_at") and row.get("completion_note") == "Đã sơ tán 42 hộ", row
        await chair.aclose()


async def test_site_terminal_files_a_situation_report(tmp_path: Path) -> None:
    async with live_server(tmp_path, join_sites=("27004",)) as srv, chromium() as browser:
        page = await (await browser.new_context(viewport={"width": 1366, "height": 900})).new_page()
        await page.goto(srv.join_link("27004"))
        await page.wait_for_selector("#report:not([hidden])", timeout=10_000)
        await page.click("#report summary")
        await page.select_option("#report-schema", "covid19")
        await page.wait_for_selector("#ind-zone_level")
        assert "chưa gửi" in await page.inner_text("#report-state")
        # Bad input: a required count left empty is refused, and the field is named.
        await page.fill("#ind-new_cases", "12")
        await page.fill("#ind-under_treatment", "30")
        await page.select_option("#ind-zone_level", "orange")
        await page.click("#report-form button[type=submit]")
        await page.wait_for_selector("#report-error:has-text('deaths')")
        assert await page.get_attribute("#ind-deaths", "aria-invalid") == "true"
        await page.fill("#ind-deaths", "0")
        await page.click("#report-form button[type=submit]")
        await page.wait_for_selector("#report-state:has-text('lần 1')", timeout=5000)
        assert await page.inner_text("#report-error") == ""
        await shot(page, "site-report")
        chair = await _staff(srv)
        rows = (await chair.get("/api/command/reports", params={"schema": "covid19"})).json()
        assert [(r["values"]["new_cases"], r["values"]["zone_level"]) for r in rows] == [
            (12, "orange")
        ]
        await chair.aclose()
