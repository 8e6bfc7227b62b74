"""Open a site's live session for a test that joins a meeting over HTTP.

A site joins a meeting only while its session is up (issue 12, item 5): a join over
HTTP alone is refused with ``no_session``. Tests that drive sites over HTTP open a
heartbeat-only session first with `open_session`.
"""

from __future__ import annotations

import asyncio

from diemcau.runtime import Runtime
from tests.browser import HeartbeatSite

__all__ = ["open_session"]


async def open_session(
    runtime: Runtime, code: str, join_code: str, *, timeout: float = 10.0
) -> HeartbeatSite:
    """Connect `code` with `join_code` to the runtime's site socket; return once the hub
    counts it online (the caller closes it)."""
    site = await runtime.sites.find(code, reload_missing=True)
    assert site is not None, code
    session = HeartbeatSite(runtime.presence.url, join_code)
    await session.start()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not runtime.presence.is_online(site.id):
        assert loop.time() < deadline, f"site {code} not online after {timeout} s"
        await asyncio.sleep(0.02)
    return session
