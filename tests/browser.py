"""Helpers for the real-browser tests: a live control server and Debian's Chromium.

`live_server` runs the real app (build_runtime + create_app + uvicorn, through
`diemcau.api.server.serve`) on a free 127.0.0.1 port over a temporary SQLite
store that it seeds first: a directory, staff accounts and site join codes.
It serves HTTPS and ``wss://`` by default with a certificate from a lab CA made
once per test run (`lab_tls`); this process trusts that CA (``SSL_CERT_FILE``)
and `chromium` trusts exactly that certificate's key (Chromium's
``--ignore-certificate-errors-spki-list``, a pin of one key, not a blanket
"ignore errors").
`chromium` launches Debian's Chromium under Playwright (never ``playwright
install``) with fake camera/microphone and a fresh profile. `shot` saves a
screenshot into ``test-artifacts/`` for a person to look at.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import json
import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, async_playwright

from diemcau.accounts.service import create_staff, rotate_site
from diemcau.api.server import serve
from diemcau.config import Settings
from diemcau.directory.records import UnitRecord
from diemcau.directory.service import load_builtin, load_units
from diemcau.runtime import Runtime
from diemcau.store import Database, migrate
from diemcau.tls.certs import LabCA, ServerFiles
from diemcau.tls.context import spki_sha256

__all__ = [
    "ARTIFACTS",
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "HeartbeatSite",
    "LabTls",
    "LiveServer",
    "MediaRig",
    "SMALL_TREE",
    "chromium",
    "free_port",
    "lab_tls",
    "live_server",
    "media_cluster",
    "shot",
    "staff_login",
    "wait_for",
]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
STAFF_PASSWORD = "correct-horse-42"  # noqa: S105 - a throwaway test account

# A small real-looking tree: two provinces with communes at their true centroids.
SMALL_TREE: tuple[UnitRecord, ...] = (
    UnitRecord("VN", "Việt Nam", "country"),
    UnitRecord("01", "Thành phố Hà Nội", "province", "Thành phố", "VN", 21.03, 105.85),
    UnitRecord("79", "Thành phố Hồ Chí Minh", "province", "Thành phố", "VN", 10.78, 106.70),
    UnitRecord("00004", "Phường Ba Đình", "commune", "Phường", "01", 21.035, 105.834),
    UnitRecord("00008", "Phường Ngọc Hà", "commune", "Phường", "01", 21.040, 105.820),
    UnitRecord("00091", "Phường Hoàn Kiếm", "commune", "Phường", "01", 21.028, 105.852),
    UnitRecord("00256", "Xã Sóc Sơn", "commune", "Xã", "01", 21.257, 105.849),
    UnitRecord("26734", "Phường Sài Gòn", "commune", "Phường", "79", 10.776, 106.701),
    UnitRecord("26740", "Phường Bến Thành", "commune", "Phường", "79", 10.772, 106.698),
    UnitRecord("27259", "Xã Cần Giờ", "commune", "Xã", "79", 10.411, 106.953),
    UnitRecord("27004", "Xã Củ Chi", "commune", "Xã", "79", 10.974, 106.493),
)


@dataclass(frozen=True)
class LabTls:
    """The test run's lab CA and the loopback server certificate signed by it."""

    ca: LabCA
    server: ServerFiles
    spki: str


@functools.cache
def lab_tls() -> LabTls:
    """One lab CA and one 127.0.0.1 certificate per test run (removed at exit).

    Python clients of this process (httpx, websockets, urllib, aiortc bots'
    Janus sockets) trust the CA through ``SSL_CERT_FILE``.
    """
    folder = Path(tempfile.mkdtemp(prefix="diemcau-test-tls-"))
    atexit.register(shutil.rmtree, folder, True)
    ca = LabCA.open_or_create(folder)
    files = ca.issue(["127.0.0.1", "localhost"], folder, stem="server")
    os.environ["SSL_CERT_FILE"] = str(ca.cert_path)
    return LabTls(ca, files, spki_sha256(files.cert))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


@dataclass
class LiveServer:
    """A running control server and what the tests need to drive it."""

    base_url: str
    runtime: Runtime
    join_codes: dict[str, str] = field(default_factory=dict)
    staff_password: str = STAFF_PASSWORD

    def join_link(self, site_code: str) -> str:
        return f"{self.base_url}/join#{self.join_codes[site_code]}"


@asynccontextmanager
async def live_server(
    tmp_path: Path,
    *,
    dataset: str | None = None,
    records: Sequence[UnitRecord] = SMALL_TREE,
    join_sites: Sequence[str] = (),
    staff: Sequence[tuple[str, str, str | None]] = (
        ("chair", "chair", None),
        ("hanoi", "province_officer", "01"),
    ),
    tls: bool = True,
    host: str = "127.0.0.1",
    port: int = 0,
    tls_files: ServerFiles | None = None,
    env: dict[str, str] | None = None,
    http_redirect_port: int = 0,
) -> AsyncIterator[LiveServer]:
    """Seed a fresh SQLite store, serve it on 127.0.0.1, stop it afterwards.

    Args:
        tmp_path: where the store lives.
        dataset: a built-in dataset to load ("vn-2025" ...) instead of `records`.
        records: the tree to load when no dataset is given.
        join_sites: site codes to issue join codes for (``LiveServer.join_codes``).
        staff: (username, role, province code) accounts, all with `STAFF_PASSWORD`.
        tls: serve HTTPS and wss:// with the test run's lab certificate (default).
        host, port, tls_files: bind address, port (0: a free one) and certificate
            (the field lab serves 198.51.100.10:443 with its control host's).
        env: extra environment for the server (presence address, ...).
        http_redirect_port: with TLS, redirect plain HTTP on this port.
    """
    url = f"sqlite+aiosqlite:///{tmp_path / 'web.db'}"
    await migrate(url)
    db = Database(url)
    try:
        if dataset:
            await load_builtin(db, dataset)
        else:
            await load_units(db, list(records), dataset="test")
        key = await db.secret_key("")
        codes = {code: await rotate_site(db, key, code) for code in join_sites}
        for username, role, province in staff:
            await create_staff(db, username, STAFF_PASSWORD, role, province)
    finally:
        await db.dispose()

    port = port or free_port()
    settings = Settings(
        data_dir=tmp_path,
        database_url=url,
        host=host,
        port=port,
        http_redirect_port=http_redirect_port,
    )
    if tls:
        files = tls_files or lab_tls().server
        settings = replace(settings, tls_cert=str(files.cert), tls_key=str(files.key))
    ready: asyncio.Future[Runtime] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()

    async def on_ready(runtime: Runtime) -> None:
        ready.set_result(runtime)

    # The site socket takes any free port (the default is the HTTP port + 1).
    overrides = {"DIEMCAU_PRESENCE_PORT": "0", **(env or {})}
    saved = {k: os.environ.get(k) for k in overrides}
    os.environ.update(overrides)
    task = asyncio.create_task(serve(settings, on_ready=on_ready, stop=stop))
    try:
        waiting: set[asyncio.Future[Any]] = {task, ready}
        done, _ = await asyncio.wait(waiting, timeout=30, return_when="FIRST_COMPLETED")
        if task in done:
            await task  # raises the server's start-up error
            raise RuntimeError("the server stopped before it was ready")
        if ready not in done:
            raise TimeoutError("the server did not start within 30 s")
        scheme = "https" if tls else "http"
        shown = "" if (tls and port == 443) else f":{port}"
        yield LiveServer(f"{scheme}://{host}{shown}", ready.result(), codes)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        stop.set()
        await asyncio.wait_for(task, timeout=15)


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless, fake media devices, a fresh temporary profile."""
    if not os.path.exists(CHROMIUM):
        raise RuntimeError(f"{CHROMIUM} is missing (Debian package chromium)")
    async with async_playwright() as pw:
        pin = f"--ignore-certificate-errors-spki-list={lab_tls().spki}"
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS, pin]
        )
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

    The orchestrator is installed as ``runtime.services["media"]`` of the running
    server, the way a deployment attaches it, and removed (processes stopped by
    PID) afterwards. Sites are planned onto relays by their province code.
    """
    from diemcau.media.cluster import LocalCluster
    from diemcau.media.node import NodeRegistry
    from diemcau.media.orchestrator import MediaOrchestrator
    from diemcau.media.runtime import site_refs

    sites = await site_refs(srv.runtime.db)
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
        srv.runtime.services["media"] = orch
        yield MediaRig(orch, cluster)
    finally:
        srv.runtime.services.pop("media", None)
        await orch.close()
        await registry.stop()
        await cluster.stop()
