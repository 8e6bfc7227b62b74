"""A live control server on a seeded store, for tests, benchmarks and the field lab.

`live_server` runs the real app (`diemcau.api.server.serve`: the same
uvicorn, site-session socket and services as production) in this event loop,
over a store it migrates and seeds first: a directory of units, staff
accounts and join codes for the sites asked. It serves HTTPS and ``wss://``
by default with the run's lab certificate (`diemcau.lab.trust.lab_tls`), or
any certificate given (the field lab's control host on 198.51.100.10:443),
on SQLite by default or any database URL (the lab's PostgreSQL).
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from diemcau.accounts.service import create_staff, rotate_site
from diemcau.api.server import serve
from diemcau.config import Settings
from diemcau.directory.records import UnitRecord
from diemcau.directory.service import load_builtin, load_units
from diemcau.instance_keys import load_instance_keys
from diemcau.lab.trust import lab_tls
from diemcau.runtime import Runtime
from diemcau.store import Database, migrate
from diemcau.tls.certs import ServerFiles

__all__ = ["SMALL_TREE", "STAFF_PASSWORD", "LiveServer", "free_port", "live_server", "seed_store"]

STAFF_PASSWORD = "correct-horse-42"  # noqa: S105 - a throwaway lab account

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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    """A running control server and what a test or benchmark needs to drive it."""

    base_url: str
    runtime: Runtime
    join_codes: dict[str, str] = field(default_factory=dict)
    staff_password: str = STAFF_PASSWORD

    def join_link(self, site_code: str) -> str:
        return f"{self.base_url}/join#{self.join_codes[site_code]}"


async def seed_store(
    url: str,
    dataset: str | None,
    records: Sequence[UnitRecord],
    join_sites: Sequence[str],
    staff: Sequence[tuple[str, str, str | None]],
) -> dict[str, str]:
    """Migrate and fill the store; returns the join code of each site asked."""
    await migrate(url)
    db = Database(url)
    try:
        if dataset:
            await load_builtin(db, dataset)
        else:
            await load_units(db, list(records), dataset="test")
        key = (await load_instance_keys(Settings(database_url=url), db)).site
        codes = {code: await rotate_site(db, key, code) for code in join_sites}
        for username, role, province in staff:
            await create_staff(db, username, STAFF_PASSWORD, role, province)
    finally:
        await db.dispose()
    return codes


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
    database_url: str | None = None,
) -> AsyncIterator[LiveServer]:
    """Seed a fresh store, serve it, stop it afterwards.

    Args:
        tmp_path: where the SQLite store (and the server's data) live.
        dataset: a built-in dataset to load ("vn-2025" ...) instead of `records`.
        records: the tree to load when no dataset is given.
        join_sites: site codes to issue join codes for (``LiveServer.join_codes``).
        staff: (username, role, province code) accounts, all with `STAFF_PASSWORD`.
        tls: serve HTTPS and wss:// (default), with the run's lab certificate
            unless `tls_files` is given.
        host, port: bind address and port (0: a free one).
        env: extra environment for the server (presence address, ...).
        http_redirect_port: with TLS, redirect plain HTTP on this port.
        database_url: an empty database to use instead of SQLite in `tmp_path`.
    """
    url = database_url or f"sqlite+aiosqlite:///{tmp_path / 'web.db'}"
    codes = await seed_store(url, dataset, records, join_sites, staff)
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
        done, _ = await asyncio.wait((task, ready), timeout=30, return_when="FIRST_COMPLETED")
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
