"""Helpers for the real-browser tests: a live control server and Debian's Chromium.

The server, the run's lab CA and the Chromium launch live in the product's
tooling layer (`diemcau.lab.server`, `diemcau.lab.trust`,
`diemcau.lab.browser`), shared with the benchmarks; this module re-exports
them and adds what only tests need: `chromium` (a browser trusting the run's
loopback certificate), `shot` (a screenshot into ``test-artifacts/`` for a
person to look at), staff login, a heartbeat-only site and a media cluster.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, async_playwright

from diemcau.lab.browser import CHROMIUM, FRAMES_JS, launch_chromium
from diemcau.lab.server import (
    SMALL_TREE,
    STAFF_PASSWORD,
    LiveServer,
    free_port,
    live_server,
)
from diemcau.lab.trust import LabTls, lab_tls

__all__ = [
    "ARTIFACTS",
    "CHROMIUM",
    "HeartbeatSite",
    "LabTls",
    "LiveServer",
    "MediaRig",
    "SMALL_TREE",
    "STAFF_PASSWORD",
    "chromium",
    "free_port",
    "lab_tls",
    "live_server",
    "media_cluster",
    "shot",
    "staff_login",
    "video_playing",
    "wait_for",
]

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


async def wait_for(
    probe: Callable[[], Awaitable[Any]], *, timeout: float = 10.0, interval: float = 0.05
) -> Any:
    """Poll `probe` until it returns a truthy value; fail with the last value on timeout."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while True:
        last = await probe()
        if last:
            return last
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")
        await asyncio.sleep(interval)


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless, fake media devices, a fresh temporary profile."""
    async with async_playwright() as pw:
        browser = await launch_chromium(pw, [lab_tls().spki])
        try:
            yield browser
        finally:
            await browser.close()


async def shot(page: Page, name: str) -> Path:
    """Save a full-window screenshot as ``test-artifacts/<name>.png``."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path))
    return path


async def staff_login(page: Page, base_url: str, path: str, username: str) -> None:
    """Open a staff page and sign in through its login card."""
    await page.goto(base_url + path)
    await page.fill("#login input[name=username]", username)
    await page.fill("#login input[name=password]", STAFF_PASSWORD)
    await page.click("#login button[type=submit]")
    await page.wait_for_selector("#app:not([hidden])", timeout=10_000)


async def video_playing(page: Page, selector: str, timeout: float = 15.0) -> None:
    """Wait until the <video> at `selector` decodes frames, and keeps decoding them."""

    async def frames() -> int | None:
        n = int(await page.evaluate(FRAMES_JS, selector))
        return n if n > 0 else None

    first = int(await wait_for(frames, timeout=timeout))

    async def more() -> bool:
        return int(await page.evaluate(FRAMES_JS, selector)) >= first + 5

    await wait_for(more, timeout=5)


class HeartbeatSite:
    """A minimal control-plane site: hello with its join code, then heartbeats.

    `silence` stops the heartbeats but keeps the socket open, the way a site
    whose link dies without a FIN looks to the server.
    """

    def __init__(self, url: str, join_code: str) -> None:
        self.url = url
        self.join_code = join_code
        self.welcome: dict[str, Any] = {}
        self._ws: Any = None
        self._beat: asyncio.Task[None] | None = None

    async def start(self) -> None:
        from websockets.asyncio.client import connect

        self._ws = await connect(self.url, compression=None, ping_interval=None)
        await self._ws.send(json.dumps({"type": "hello", "v": 1, "join_code": self.join_code}))
        self.welcome = json.loads(await asyncio.wait_for(self._ws.recv(), 5))
        assert self.welcome.get("type") == "welcome", self.welcome
        self._beat = asyncio.create_task(self._heartbeats())

    async def _heartbeats(self) -> None:
        from websockets.exceptions import ConnectionClosed

        link = {"rtt_ms": 30, "loss_pct": 0, "jitter_ms": 3}
        try:
            while True:
                await self._ws.send(json.dumps({"type": "hb", "link": link}))
                await asyncio.sleep(0.5)
        except ConnectionClosed:
            return

    def silence(self) -> None:
        if self._beat is not None:
            self._beat.cancel()

    async def close(self) -> None:
        self.silence()
        if self._ws is not None:
            self._ws.transport.abort()


@dataclass
class MediaRig:
    """The media side of a browser test: the orchestrator and its Janus processes."""

    orch: Any
    cluster: Any


@asynccontextmanager
async def media_cluster(
    srv: LiveServer,
    relays: Sequence[tuple[str, tuple[str, ...], int]] = (
        ("r1", ("01",), 50),
        ("r2", ("79",), 50),
    ),
    token_ttl: int = 600,
    session_ttl: int = 12 * 3600,
) -> AsyncIterator[MediaRig]:
    """Real Janus processes (central + relays) driven by a `MediaOrchestrator`.

    The orchestrator is installed into the running server's media plane
    (`MediaPlaneService.install`, with the reactions a deployment has), and
    removed (processes stopped by PID) afterwards. Sites are planned onto relays
    by their province code.
    """
    from diemcau.media.cluster import LocalCluster
    from diemcau.media.node import NodeRegistry
    from diemcau.media.orchestrator import MediaOrchestrator
    from diemcau.media.service import site_refs

    sites = await site_refs(srv.runtime.sites)
    cluster = LocalCluster(relays=list(relays), tls=lab_tls().server)
    await cluster.start()
    registry = NodeRegistry(interval=0.3, down_after=1.0, request_timeout=0.5)
    orch = MediaOrchestrator(
        cluster.nodes(),
        sites,
        sync_interval=0.2,
        registry=registry,
        token_ttl=token_ttl,
        session_ttl=session_ttl,
    )
    try:
        await orch.start()
        registry.start()
        srv.runtime.media_plane.install(orch)
        yield MediaRig(orch, cluster)
    finally:
        srv.runtime.media_plane.uninstall()
        await orch.close()
        await registry.stop()
        await cluster.stop()
