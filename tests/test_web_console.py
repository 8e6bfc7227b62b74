"""Every page loads clean in Chromium: no console error, no failed request, no other host.

Each page is opened the way a person does: the staff pages signed out (the login
card) and signed in, the site terminal from a join link (it opens its session),
the API documentation (/docs) and a printable attendance report. The test
records every console message of level error, every uncaught page error, every
request that failed or answered 4xx/5xx, and the host of every request; it
fails on any of them, and on any request to a host other than the server's
(a closed government network has no CDN).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, Request, Response

from tests.browser import STAFF_PASSWORD, LiveServer, chromium, live_server, shot

pytestmark = pytest.mark.browser


@dataclass
class Watch:
    """What one page did while it loaded."""

    origin: str
    errors: list[str] = field(default_factory=list)
    hosts: set[str] = field(default_factory=set)

    def attach(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)
        page.on("request", self._request)

    def _console(self, msg: ConsoleMessage) -> None:
        if msg.type == "error":
            self.errors.append(f"console: {msg.text} ({msg.location.get('url', '')})")

    def _failed(self, req: Request) -> None:
        self.errors.append(f"request failed: {req.url} ({req.failure})")

    def _response(self, resp: Response) -> None:
        if resp.status >= 400:
            self.errors.append(f"HTTP {resp.status}: {resp.url}")

    def _request(self, req: Request) -> None:
        parts = urlsplit(req.url)
        if parts.scheme in ("http", "https", "ws", "wss"):
            self.hosts.add(parts.hostname or "")


async def _open(
    browser: Browser, srv: LiveServer, path: str, ready: str, *, login: str = ""
) -> Watch:
    context = await browser.new_context()
    page = await context.new_page()
    watch = Watch(srv.base_url)
    watch.attach(page)
    try:
        await page.goto(srv.base_url + path)
        if login:
            await page.fill("#login input[name=username]", login)
            await page.fill("#login input[name=password]", STAFF_PASSWORD)
            await page.click("#login button[type=submit]")
        await page.wait_for_selector(ready, timeout=15_000)
        await page.wait_for_load_state("networkidle", timeout=15_000)
        name = path.strip("/").replace("/", "-").split("#")[0] or "index"
        await shot(page, f"console-{name}{'-' + login if login else ''}")
    finally:
        await context.close()
    return watch


async def _ended_meeting(srv: LiveServer) -> tuple[int, str]:
    """A started and ended meeting's id, and a chair's bearer token."""
    async with httpx.AsyncClient(base_url=srv.base_url, timeout=10) as api:
        r = await api.post(
            "/api/auth/login", json={"username": "chair", "password": srv.staff_password}
        )
        chair = {"Authorization": f"Bearer {r.json()['token']}"}
        body = {"title": "Họp thử", "invite": {"everyone": True}}
        r = await api.post("/api/meetings", json=body, headers=chair)
        assert r.status_code == 201, r.text
        mid = int(r.json()["id"])
        assert (await api.post(f"/api/meetings/{mid}/start", headers=chair)).status_code == 200
        assert (await api.post(f"/api/meetings/{mid}/end", headers=chair)).status_code == 200
    return mid, chair["Authorization"]


PAGES: list[tuple[str, str, str]] = [
    # (path, a selector present once the page is ready, staff login or "")
    ("/", "#login-box:not([hidden])", ""),
    ("/dashboard", "#login-box:not([hidden])", ""),
    ("/chair", "#login-box:not([hidden])", ""),
    ("/", "#dir:not([hidden])", "chair"),
    ("/dashboard", "#app:not([hidden])", "chair"),
    ("/chair", "#app:not([hidden])", "chair"),
    ("/directives", "#login-box:not([hidden])", ""),
    ("/directives", "#list table", "chair"),
    ("/directives#new", "#preview", "chair"),
    ("/reports", "#trend-table table", "chair"),
    ("/charts", "#top-commune table", "chair"),
    ("/alerts", "#list table", "chair"),
    ("/inspection", "#history table", "chair"),
    ("/admin", "#staff-table table", "admin"),
    ("/site", "#join:not([hidden])", ""),
    ("/docs", ".swagger-ui .info .title", ""),
]


async def test_every_page_loads_clean_without_other_hosts(tmp_path: Path) -> None:
    staff = (("chair", "chair", None), ("admin", "admin", None))
    async with (
        live_server(tmp_path, join_sites=("00004",), staff=staff) as srv,
        chromium() as browser,
    ):
        host = urlsplit(srv.base_url).hostname
        results: dict[str, Watch] = {}
        for path, ready, login in PAGES:
            results[f"{path} {login}".strip()] = await _open(browser, srv, path, ready, login=login)
        join = "/join#" + srv.join_codes["00004"]
        results["/join"] = await _open(browser, srv, join, "#conn[data-state=online]")

        mid, token = await _ended_meeting(srv)
        context = await browser.new_context(extra_http_headers={"Authorization": token})
        page = await context.new_page()
        watch = Watch(srv.base_url)
        watch.attach(page)
        await page.goto(f"{srv.base_url}/api/meetings/{mid}/attendance/report.html")
        await page.wait_for_selector("h1")
        await page.wait_for_load_state("networkidle")
        await context.close()
        results["attendance report"] = watch

        problems = {name: w.errors for name, w in results.items() if w.errors}
        assert problems == {}
        others = {name: w.hosts - {host} for name, w in results.items() if w.hosts - {host}}
        assert others == {}
