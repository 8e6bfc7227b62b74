"""Browser hardening (issue 12, item 8): security headers, no framing, public URLs.

Bad inputs tried: a page framed by another document (clickjacking the chair console),
requests with a forged ``Host`` header asking where the site socket is, and every page
loaded under the strict policy in Chromium (a page that needed inline script, or a
socket the policy forgot, would log a violation and stop working).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import ConsoleMessage

from diemcau.api import create_app
from diemcau.api.web_routes import PAGES as PAGE_FILES
from diemcau.config import Settings
from diemcau.runtime import Runtime
from diemcau.wiring import build_runtime
from tests.browser import chromium, live_server, shot, staff_login, wait_for

PAGES = ("/", *PAGE_FILES)  # every page the app serves


@pytest.fixture
async def runtime(sqlite_url: str) -> AsyncIterator[Runtime]:
    settings = Settings(database_url=sqlite_url, port=0, public_url="https://diemcau.example/")
    rt = await build_runtime(settings)
    await rt.start()
    try:
        yield rt
    finally:
        await rt.close()


async def test_every_response_carries_the_hardening_headers(runtime: Runtime) -> None:
    transport = httpx.ASGITransport(app=create_app(runtime), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        for path in (*PAGES, "/api/web/config", "/api/meetings", "/no-such-page", "/healthz"):
            r = await c.get(path)
            h = r.headers
            assert h["x-frame-options"] == "DENY", path
            assert h["x-content-type-options"] == "nosniff", path
            assert h["referrer-policy"] == "no-referrer", path
            csp = h["content-security-policy"]
            assert "frame-ancestors 'none'" in csp and "script-src 'self';" in csp, path
            assert "unsafe-inline" not in csp.split("script-src", 1)[1].split(";")[0], path
            assert "object-src 'none'" in csp and "base-uri 'none'" in csp, path
        # The API explorer is the framework's page with an inline bootstrap script: it
        # alone may run inline script, and is still never framed.
        r = await c.get("/docs")
        assert r.status_code == 200
        assert "script-src 'self' 'unsafe-inline'" in r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]


async def test_public_urls_come_from_configuration_not_the_host_header(
    runtime: Runtime,
) -> None:
    hub = runtime.presence
    transport = httpx.ASGITransport(app=create_app(runtime), raise_app_exceptions=False)
    want = f"wss://diemcau.example:{hub.port}/site"
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        for host in (None, "evil.example", "127.0.0.1:1", "[::1]:8080", "a" * 300):
            headers = {"Host": host} if host else {}
            cfg = (await c.get("/api/web/config", headers=headers)).json()
            assert cfg["presence_url"] == want, (host, cfg)
            info = (await c.get("/api/presence/info", headers=headers)).json()
            assert info["url"] == want, (host, info)


async def test_pages_run_under_the_policy_and_cannot_be_framed(tmp_path: Path) -> None:
    async with (
        live_server(tmp_path, join_sites=("27004",)) as srv,
        chromium() as browser,
    ):
        page = await browser.new_page(viewport={"width": 1280, "height": 800})
        violations: list[str] = []

        def on_console(msg: ConsoleMessage) -> None:
            if "Content Security Policy" in msg.text or "Refused to" in msg.text:
                violations.append(f"{page.url}: {msg.text}")

        page.on("console", on_console)
        page.on("pageerror", lambda exc: violations.append(f"{page.url}: {exc}"))
        for path in PAGES:
            await page.goto(srv.base_url + path)
            await page.wait_for_load_state("networkidle")
        # Signed in, the consoles open the staff stream (a socket) and draw their data.
        await staff_login(page, srv.base_url, "/chair", "chair")
        await page.goto(srv.base_url + "/dashboard")  # signed in already
        await page.wait_for_selector("#app:not([hidden])", timeout=10_000)
        await page.wait_for_load_state("networkidle")
        await shot(page, "hardening-dashboard")
        # A site terminal opened from its join link reaches its session socket.
        site = await srv.runtime.sites.find("27004")
        assert site is not None
        await page.goto(f"{srv.base_url}/join#{srv.join_codes['27004']}")

        async def online() -> bool:
            return srv.runtime.presence.is_online(site.id)

        await wait_for(online, timeout=15)
        # Its heartbeats tick in a worker it makes from a blob: they must keep coming.
        await page.wait_for_function(
            "() => window.diemcauSite.beats > 5 && window.diemcauSite.hbWorker !== null",
            timeout=15_000,
        )
        assert violations == [], violations

        # Framed by another document, the chair console does not render.
        framing = await browser.new_page()
        refused: list[str] = []
        framing.on("console", lambda m: refused.append(m.text))
        await framing.set_content(
            f'<iframe id="f" src="{srv.base_url}/chair" width="800" height="600"></iframe>'
        )

        async def blocked() -> bool:
            return any("frame-ancestors" in m or "X-Frame-Options" in m for m in refused)

        await wait_for(blocked, timeout=10)
        frame = framing.frames[-1]
        assert frame is not framing.main_frame
        assert await frame.query_selector("#login") is None  # nothing of the console
        await shot(framing, "hardening-framed-chair")
