"""The site terminal speaks protocol v2: it keeps the sub-second heartbeat interval it is told.

(The heartbeats tick in a worker so that a hidden tab, whose own timers the browser
holds to about one a second, keeps time too; headless Chromium does not throttle,
so that part is by design and not shown here.)"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.browser import chromium, live_server, shot

pytestmark = pytest.mark.browser


async def test_site_page_keeps_a_v2_session_alive_with_fast_heartbeats(tmp_path: Path) -> None:
    async with live_server(tmp_path, join_sites=("00004",)) as srv, chromium() as browser:
        hub = srv.runtime.presence
        page = await browser.new_page()
        await page.goto(f"{srv.base_url}/join#{srv.join_codes['00004']}")
        await page.wait_for_selector("#conn[data-state=online]", timeout=15_000)
        (sid,) = hub.online_site_ids()
        session = hub.live_sessions()[sid]
        fast = hub.config.fast_offline_after_s
        assert session.offline_after_s == fast, "the page said v2 and got the fast deadline"
        stamps: list[float] = []
        for _ in range(16):  # 4 s, more than five deadlines
            stamps.append(session.last_seen)
            await asyncio.sleep(0.25)
        assert hub.is_online(sid) and hub.live_sessions()[sid] is session
        gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
        assert max(gaps) < fast, f"heartbeats arrived with gaps {gaps}"
        assert await page.get_attribute("#conn", "data-state") == "online"
        await shot(page, "site-v2-online")
