"""Attach the media plane to the control server's runtime.

The plane starts when Janus nodes are declared (``DIEMCAU_INVENTORY``, the
deployment inventory with its TURN servers, docs/deploy.md; or the older
``DIEMCAU_MEDIA_NODES``) or when
``Settings.media_relays`` asks for local Janus processes (the embedded default).
It starts after the meetings service, so running programs are re-declared from
the store (`MediaOrchestrator.restore_program`) before `reconcile` removes
whatever on the nodes is no longer wanted.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import aliased

from diemcau.media.node import JanusNode
from diemcau.media.plane import MediaPlane, start_media_plane
from diemcau.media.topology import Move, SiteRef
from diemcau.runtime import Runtime
from diemcau.store import Database
from diemcau.store.models import Site, Unit
from diemcau.tls.certs import ServerFiles

__all__ = ["attach", "site_refs"]


async def site_refs(db: Database) -> list[SiteRef]:
    """Every site with a province, as the relay planner sees it."""
    province = aliased(Unit)
    async with db.session() as session:
        rows = (
            await session.execute(
                select(Site.code, province.code, Site.name)
                .join(province, province.id == Site.province_id)
                .where(Site.revoked.is_(False))
            )
        ).all()
    return [SiteRef(code, prov, name) for code, prov, name in rows]


async def attach(runtime: Runtime) -> None:
    """Add ``runtime.services["media"]`` at start when a media plane is configured."""
    settings = runtime.settings
    inventory = os.environ.get("DIEMCAU_INVENTORY", "")
    if settings.media_relays <= 0 and not os.environ.get("DIEMCAU_MEDIA_NODES") and not inventory:
        return
    holder: list[MediaPlane] = []

    async def tell_moved_sites(moves: list[Move]) -> None:
        """Sites whose relay changed are told at once to fetch a new media grant.

        Live only (``durable=False``): a site that is offline asks for a grant
        when it comes back anyway, so a stale move must not be replayed.
        """
        hub = runtime.services.get("presence")
        codes = {m.site: m for m in moves}
        if hub is None or not codes:
            return
        async with runtime.db.session() as session:
            rows = (
                await session.execute(select(Site.id, Site.code).where(Site.code.in_(codes)))
            ).all()
        by_node: dict[tuple[str | None, str | None], list[int]] = {}
        for site_id, code in rows:
            move = codes[code]
            by_node.setdefault((move.old, move.new), []).append(site_id)
        for (old, new), site_ids in by_node.items():
            await hub.send(site_ids, "media.moved", {"from": old, "to": new}, durable=False)

    async def node_alert(node: JanusNode, up: bool) -> None:
        """A node that stops answering raises a command-center alert; recovery clears it."""
        command = runtime.services.get("command")
        if command is None:
            return
        if up:
            await command.alerts.clear_alert("media_node_degraded", node.name)
            return
        await command.alerts.raise_alert(
            "media_node_degraded",
            node.name,
            message_vi=f"Máy chủ truyền thông {node.name} ({node.role}) không phản hồi",
            message_en=f"Media node {node.name} ({node.role}) is not answering",
            severity="critical",
            details={"node": node.name, "role": node.role, "provinces": list(node.provinces)},
        )

    async def start() -> None:
        nodes, turn = None, []
        if inventory:
            from diemcau.deploy.inventory import Inventory

            inv = Inventory.load(Path(inventory))
            nodes, turn = inv.janus_nodes(), inv.turn_servers()
        plane = await start_media_plane(
            await site_refs(runtime.db),
            nodes=nodes,
            turn=turn,
            local_relays=max(1, settings.media_relays),
            base_dir=settings.data_dir / "janus",
            tls=(
                ServerFiles(Path(settings.tls_cert), Path(settings.tls_key))
                if settings.tls
                else None
            ),
        )
        holder.append(plane)
        orch = plane.orchestrator
        meetings = runtime.services.get("meetings")
        if meetings is not None:
            for meeting_id, codes in (await meetings.live_floors()).items():
                orch.restore_program(meeting_id, codes)
        await orch.reconcile()
        orch.registry.on_change(node_alert)
        orch.add_move_listener(tell_moved_sites)
        runtime.services["media"] = orch

    async def stop() -> None:
        runtime.services.pop("media", None)
        while holder:
            await holder.pop().close()

    runtime.add_service("media_plane", holder, start, stop)
