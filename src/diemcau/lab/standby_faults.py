"""The standby control server taking over, on the lab: ``kill -9`` of the active one.

Two ``diemcau serve --lease`` processes share the control host's PostgreSQL: the
active on the control host (198.51.100.10, sessions on .11), the standby on the
standby host (.12, .13), both over TLS with the lab CA, both knowing both addresses.
Sites (the simulator, trying the addresses in order) and the chair work against
them; the active is killed; the standby must take the lease, start its services
(re-declaring the media plane when the deployment runs Janus nodes) and have every
site working again within `TAKEOVER_BOUND_S`, nothing lost. The killed server is
then started again and must come up as the new standby (docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from diemcau.lab.control_process import ControlProcess
from diemcau.lab.deployment import LabDeployment
from diemcau.lab.fault_stage import FaultResult, FaultStage, seed_sites, utcnow
from diemcau.lab.losses import Losses
from diemcau.lab.network import BACKBONE_HOSTS, Lab
from diemcau.lab.server import STAFF_PASSWORD
from diemcau.lab.trust import lab_tls
from diemcau.media.control import NodeControl
from diemcau.media.node import JanusNode
from diemcau.media.orchestrator import feed_id, room_id

__all__ = ["TAKEOVER_BOUND_S", "StandbyPair", "standby_takeover"]

# From the kill of the active server to a site's request confirmed by the standby.
TAKEOVER_BOUND_S = 10.0


@dataclass
class StandbyPair:
    """The two servers of a pair on a lab (built with the standby host)."""

    active: ControlProcess
    standby: ControlProcess

    @property
    def bases(self) -> list[str]:
        return [self.active.base_url, self.standby.base_url]

    @property
    def presence_urls(self) -> list[str]:
        return [self.active.presence_url, self.standby.presence_url]


def make_pair(lab: Lab, dep: LabDeployment, tmp: Path, url: str) -> StandbyPair:
    """Both servers (not started), each on its host with its certificate."""
    assert dep.ca is not None
    servers: list[ControlProcess] = []
    for name in ("control", "standby"):
        http_ip, session_ip = BACKBONE_HOSTS[name][:2]
        files = dep.ca.issue([http_ip, session_ip], tmp / "certs", stem=f"{name}-pair")
        host = lab.hosts[name]
        servers.append(
            ControlProcess(
                tmp / name,
                url,
                443,
                443,
                host=http_ip,
                presence_host=session_ip,
                tls=files,
                lease=True,
                netns=None if host.holder is None else host.netns,
                env={"DIEMCAU_INVENTORY": str(dep.inventory_file)} if dep.janus else {},
            )
        )
    both = tuple(s.base_url for s in servers), tuple(s.presence_url for s in servers)
    for server in servers:
        server.servers, server.presence_urls = both
    return StandbyPair(*servers)


# What a crashed server may leave on the nodes: a program room of a meeting that is
# over, and a remote publisher nobody wants in a live program room.
_ORPHAN_ROOM = room_id("program", "orphan")
_ORPHAN_FEED = feed_id("site", "orphan")
_ORPHAN_STREAMS = [{"type": "video", "mindex": 0, "mid": "0", "codec": "vp8"}]


async def _on_nodes(nodes: list[JanusNode], mid: int, plant: bool) -> list[str]:
    """Plant the orphans (`plant`), or list what is wrong on the nodes now: a program or
    chair room of the live meeting missing, an orphan room or remote publisher left."""
    wrong: list[str] = []
    program, chair = room_id("program", str(mid)), room_id("chair", str(mid))
    for node in nodes:
        control = NodeControl(node)
        try:
            if plant:
                await control.ensure_room(_ORPHAN_ROOM, "program orphan")  # remote publishers only
                if node.role == "relay":
                    await control.add_remote_publisher(
                        program, _ORPHAN_FEED, "orphan", _ORPHAN_STREAMS
                    )
                continue
            rooms = set(await control.rooms())
            wanted = {program, chair} if node.role == "central" else {program}
            wrong += [f"{node.name}: room {r} missing" for r in sorted(wanted - rooms)]
            if _ORPHAN_ROOM in rooms:
                wrong.append(f"{node.name}: orphan room left")
            if program in rooms:
                feeds = {int(p.get("id", 0)) for p in await control.participants(program)}
                if _ORPHAN_FEED in feeds:
                    wrong.append(f"{node.name}: orphan remote publisher left")
        finally:
            await control.close()
    return wrong


async def _standby_refuses(pair: StandbyPair) -> str:
    """What the standby answers before the takeover ('' when as promised)."""
    async with httpx.AsyncClient(timeout=10) as c:
        info = (await c.get(f"{pair.standby.base_url}/api/presence/info")).json()
        if info.get("urls") != pair.presence_urls:
            return f"the standby's presence info lists {info.get('urls')}"
        r = await c.post(
            f"{pair.standby.base_url}/api/auth/login",
            json={"username": "chair", "password": STAFF_PASSWORD},
        )
        error = r.json().get("error", {}) if r.status_code == 503 else {}
        if error.get("code") != "standby" or error.get("active") != pair.active.base_url:
            tail = pair.standby.log_tail(12) if r.status_code >= 500 else ""
            return f"the standby answered a login with {r.status_code} {r.text[:200]} {tail}"
    return ""


async def standby_takeover(
    tmp: Path,
    *,
    sites: int = 8,
    media: bool = False,
    before_s: float = 4.0,
    after_s: float = 5.0,
) -> FaultResult:
    """Kill the active server of a standby pair mid-meeting (see the module docstring).

    Args:
        tmp: a fresh folder.
        sites: sites at work.
        media: run the deployment's Janus nodes and coturn too (the program must be
            re-declared: the same rooms on every node after the takeover).
    """
    failed = ""
    losses = Losses()
    recovery: list[float] = []
    notes: list[str] = []
    with Lab(control_here=True, lans=()) as lab:
        dep = LabDeployment(
            lab, tmp / "lab", {"relay1": ("01",), "relay2": ("79",)}, ca=lab_tls().ca, postgres=True
        )
        dep.prepare()
        try:
            if media:
                await dep.start()
            else:
                await dep.start_database()
            url = dep.database_url
            codes, ids = await seed_sites(url, sites)
            pair = make_pair(lab, dep, tmp, url)
            await pair.active.start()
            await pair.active.wait_role("active")
            await pair.standby.start()
            await pair.standby.wait_role("standby", timeout=30)
            stage = FaultStage(url, codes, ids, pair.bases, pair.presence_urls)
            try:
                failed = await _standby_refuses(pair)
                await stage.begin()
                await asyncio.sleep(before_s)
                if media:  # what the active leaves behind when it dies
                    await _on_nodes(dep.nodes(), stage.meeting_id, plant=True)
                    planted = await _on_nodes(dep.nodes(), stage.meeting_id, plant=False)
                    if sum("orphan" in w for w in planted) != 5:  # 3 rooms, 2 publishers
                        failed = failed or f"the orphans were not planted: {planted}"
                down, killed = utcnow(), time.monotonic()
                pair.active.kill()
                took = await pair.standby.wait_role("active", timeout=60)
                stage.outage(down, utcnow())
                notes.append(f"standby serving {took:.1f} s after the kill")
                await asyncio.sleep(after_s)
                recovery = stage.sites.ledger.recovered_after(killed, stage.site_ids)
                if media:
                    wrong = await _on_nodes(dep.nodes(), stage.meeting_id, plant=False)
                    failed = failed or "; ".join(wrong)
                    notes.append("media plane reconciled: program rooms kept, orphans gone")
                pair.active.spawn()  # a service manager starts it again: the new standby
                again = await pair.active.wait_role("standby", timeout=60)
                notes.append(f"the old active back as standby in {again:.1f} s")
                losses = await stage.finish()
            finally:
                await stage.close()
                for server in (pair.standby, pair.active):
                    await server.stop()
        except Exception as exc:
            failed = f"{type(exc).__name__}: {exc}"
        finally:
            await dep.stop()
    return FaultResult(
        scenario="standby takeover" + (" (media)" if media else ""),
        action=f"kill -9 of the active server of a pair on one PostgreSQL, mid-meeting "
        f"({sites} sites filing and acknowledging{', Janus nodes' if media else ''})",
        affected=sites,
        recovery_s=recovery,
        bound_s=TAKEOVER_BOUND_S,
        losses=losses,
        notes="; ".join(notes + losses.details[:3]),
        failed=failed,
    )
