"""A running control-server app on a temp SQLite store, driven over httpx (no sockets)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx

from diemcau.accounts.service import create_staff, rotate_site
from diemcau.api import create_app
from diemcau.config import Settings
from diemcau.directory import service
from diemcau.directory.records import UnitRecord
from diemcau.media.cluster import LocalCluster
from diemcau.media.node import NodeRegistry
from diemcau.media.orchestrator import MediaOrchestrator
from diemcau.media.service import site_refs
from diemcau.runtime import Runtime
from diemcau.wiring import build_runtime
from tests.browser import HeartbeatSite
from tests.site_session import open_session

PASSWORD = "correct horse battery"

# Staff accounts every API test may use: username -> (role, province code or None).
DEFAULT_STAFF: Mapping[str, tuple[str, str | None]] = {
    "chair": ("chair", None),
    "ops": ("operator", None),
    "hcm": ("province_officer", "79"),
}


@dataclass
class ApiEnv:
    """The app's client, its runtime, and each provisioned site's join code."""

    client: httpx.AsyncClient
    runtime: Runtime
    join_codes: dict[str, str]
    sessions: list[HeartbeatSite] = field(default_factory=list)

    async def login(self, username: str) -> dict[str, str]:
        r = await self.client.post(
            "/api/auth/login", json={"username": username, "password": PASSWORD}
        )
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['token']}"}

    async def connect(self, code: str) -> None:
        """Open `code`'s live site session (closed with the env): a site joins a
        meeting only while its session is up."""
        self.sessions.append(await open_session(self.runtime, code, self.join_codes[code]))

    async def site(self, code: str) -> dict[str, str]:
        r = await self.client.post(
            "/api/auth/site-login", json={"join_code": self.join_codes[code]}
        )
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['token']}"}


@asynccontextmanager
async def api_env(
    sqlite_url: str,
    tree: Sequence[UnitRecord],
    sites: Iterable[str],
    staff: Mapping[str, tuple[str, str | None]] = DEFAULT_STAFF,
) -> AsyncIterator[ApiEnv]:
    """Build the runtime, load `tree`, create `staff`, provision `sites`, start the app."""
    runtime = await build_runtime(Settings(database_url=sqlite_url, port=0))
    db = runtime.db
    await service.load_units(db, tree, dataset="test")
    for username, (role, province) in staff.items():
        await create_staff(db, username, PASSWORD, role, province_code=province)
    codes = {c: await rotate_site(db, runtime.keys.site, c) for c in sites}
    transport = httpx.ASGITransport(app=create_app(runtime), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        await runtime.start()
        env = ApiEnv(client=client, runtime=runtime, join_codes=codes)
        try:
            yield env
        finally:
            for session in env.sessions:
                await session.close()
            await runtime.close()


@asynccontextmanager
async def media_plane_on_two_relays(env: ApiEnv) -> AsyncIterator[MediaOrchestrator]:
    """Real Janus nodes (central; relay r1 for province 01, r2 for 79) run by an
    orchestrator installed as `env`'s media plane; all stopped on the way out."""
    cluster = LocalCluster(relays=[("r1", ("01",), 10), ("r2", ("79",), 10)])
    await cluster.start()
    registry = NodeRegistry(interval=0.3, down_after=1.0, request_timeout=0.5)
    o = MediaOrchestrator(
        cluster.nodes(), await site_refs(env.runtime.sites), sync_interval=0.2, registry=registry
    )
    try:
        await o.start()
        registry.start()
        env.runtime.media_plane.install(o)
        yield o
    finally:
        env.runtime.media_plane.uninstall()
        await o.close()
        await registry.stop()
        await cluster.stop()
