"""A meeting running on a lab deployment, as the field tests and benchmark need it.

`field_meeting` serves the control server on the lab's control host (HTTPS
on 198.51.100.10:443, site sessions ``wss://`` on .11:443, its certificate
from the deployment), drives the deployment's Janus nodes and TURN server
with a `MediaOrchestrator` installed into that server, logs the chair in,
creates and starts a meeting inviting the given provinces, and has a chair
bot publish stamped video and a tone at central. Everything stops in reverse
order when the block ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from diemcau.lab.deployment import LabDeployment
from diemcau.lab.network import BACKBONE_HOSTS
from diemcau.lab.server import LiveServer, live_server
from diemcau.media.node import NodeRegistry
from diemcau.media.orchestrator import MediaOrchestrator
from diemcau.media.service import site_refs
from diemcau.sim.janus_bots import JanusTarget, PublisherBot

__all__ = ["FieldMeeting", "field_meeting"]


@dataclass
class FieldMeeting:
    """The running meeting: its server, orchestrator, id and the chair's API token."""

    dep: LabDeployment
    srv: LiveServer
    orch: MediaOrchestrator
    meeting: int
    chair_token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.chair_token}"}

    def client(self) -> httpx.AsyncClient:
        """An API client of the control server (trusting the lab CA)."""
        return httpx.AsyncClient(base_url=self.srv.base_url, timeout=20, headers=self.auth)


async def _start_meeting(srv: LiveServer, units: Sequence[str]) -> tuple[str, int]:
    async with httpx.AsyncClient(base_url=srv.base_url, timeout=20) as c:
        r = await c.post(
            "/api/auth/login", json={"username": "chair", "password": srv.staff_password}
        )
        r.raise_for_status()
        token = str(r.json()["token"])
        auth = {"Authorization": f"Bearer {token}"}
        r = await c.post(
            "/api/meetings",
            json={"title": "Giao ban", "invite": {"units": list(units)}},
            headers=auth,
        )
        r.raise_for_status()
        mid = int(r.json()["id"])
        (await c.post(f"/api/meetings/{mid}/start", headers=auth)).raise_for_status()
    return token, mid


@asynccontextmanager
async def field_meeting(
    dep: LabDeployment,
    tmp: Path,
    join_sites: Sequence[str],
    *,
    units: Sequence[str] = ("01", "79"),
    http_redirect_port: int = 0,
    database_url: str | None = None,
    health_interval: float = 0.3,
    chair_bot: bool = True,
) -> AsyncIterator[FieldMeeting]:
    """The control server, the orchestrator, a started meeting and the chair bot.

    Args:
        dep: a started `LabDeployment`.
        tmp: where the server keeps its data.
        join_sites: sites to issue join codes for (`LiveServer.join_link`).
        units: the provinces the meeting invites.
        http_redirect_port: redirect plain HTTP on the control host to HTTPS.
        database_url: the store (default: SQLite in ``tmp``).
        health_interval: the node health-check period.
        chair_bot: publish the chair feed with a bot (off: a chair console will).
    """
    control, sessions = BACKBONE_HOSTS["control"][:2]
    env = {
        "DIEMCAU_PRESENCE_HOST": sessions,
        "DIEMCAU_PRESENCE_PORT": "443",
        "DIEMCAU_PRESENCE_URL": f"wss://{sessions}/site",
    }
    async with live_server(
        tmp,
        join_sites=join_sites,
        host=control,
        port=443,
        tls_files=dep.certs["control"],
        env=env,
        http_redirect_port=http_redirect_port,
        database_url=database_url,
    ) as srv:
        registry = NodeRegistry(
            interval=health_interval, down_after=3 * health_interval, request_timeout=1.0
        )
        orch = MediaOrchestrator(
            dep.nodes(),
            await site_refs(srv.runtime.sites),
            sync_interval=0.2,
            registry=registry,
            turn=dep.turn_servers(),
        )
        await orch.start()
        registry.start()
        srv.runtime.media_plane.install(orch)
        try:
            token, mid = await _start_meeting(srv, units)
            grant = orch.chair_media_grant(mid)
            chair = PublisherBot(
                JanusTarget.publish_of(grant),
                grant["publish"]["feed_id"],
                "CHAIR",
            )
            if chair_bot:
                await chair.start()
            try:
                yield FieldMeeting(dep, srv, orch, mid, token)
            finally:
                await chair.stop()
        finally:
            srv.runtime.media_plane.uninstall()
            await orch.close()
            await registry.stop()
