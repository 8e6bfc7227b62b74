"""The media plane as one service of the control server, started and stopped with the app.

It starts when Janus nodes are declared (the deployment inventory,
``DIEMCAU_INVENTORY``, docs/deploy.md; or ``DIEMCAU_MEDIA_NODES``) or local Janus
processes are asked for (``Settings.media_relays``); the composition root decides and
hands it its ports. At start, running programs are re-declared from the meetings'
live floors (the one program restore after a restart) before `reconcile` removes
whatever on the nodes is no longer wanted; then a node that stops answering raises a
command-center alert, and sites moved to another relay are told at once. A site
whose credential is rotated or revoked loses its media rights at once
(`credentials_changed`, called by the composition root) or, when another process
changed it, within `credential_poll_s`; a staff account whose sessions end (a
logout, a password change, a role change, disabled: by the API or the CLI) loses
every media session it opened within the same poll (docs/architecture.md,
docs/media.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Iterable
from pathlib import Path

from diemcau.directory.sites import SiteDirectory, SiteInfo
from diemcau.media.node import JanusNode
from diemcau.media.orchestrator import MediaOrchestrator
from diemcau.media.plane import MediaPlane, start_media_plane
from diemcau.media.ports import AlertSink, LiveFloors, NodeSource, SiteNotifier, StaffEpochs
from diemcau.media.revoke import SweepReport
from diemcau.media.staff_epochs import Epochs, sessions_ended
from diemcau.media.topology import Move, SiteRef
from diemcau.tasks import cancel_and_wait
from diemcau.tls.certs import ServerFiles

__all__ = ["NODE_ALERT", "MediaPlaneService", "site_refs"]

log = logging.getLogger(__name__)

# The command-center alert kind of a media node that stopped answering.
NODE_ALERT = "media_node_degraded"


def _site_ref(s: SiteInfo) -> SiteRef:
    return SiteRef(s.code, s.province_code, s.name, s.credential_version)


def _credential(s: SiteInfo) -> int | None:
    """The credential version a site's media rights are for; None once revoked."""
    return None if s.revoked else s.credential_version


async def site_refs(sites: SiteDirectory) -> list[SiteRef]:
    """Every usable site with a province (the chair site has none), as the planner sees it.

    The directory is reloaded first if the sites table moved (a plane is planned rarely).
    """
    await sites.refresh_if_changed()
    return [_site_ref(s) for s in await sites.all() if s.province_id is not None]


class MediaPlaneService:
    """Owns the running media plane, if any, and its reactions to node health.

    Args:
        sites: the directory's sites (planned onto relays by province).
        enabled: start a plane with the app (declared nodes or local relays configured).
        local_relays: relays of a local plane (when no nodes are declared).
        base_dir: where a local plane keeps its Janus configs and logs.
        declared: the deployment's nodes and TURN servers, read at start (None: a
            local plane, or the nodes of ``DIEMCAU_MEDIA_NODES``).
        tls: the server's certificate and key; local nodes then serve ``wss://``.
        floors: the live meetings' floors to re-declare at start (after a restart).
        notifier: tells sites whose relay changed (``media.moved``).
        alerts: raises and clears the alert of a node that stops answering.
        credential_poll_s: how often the directory is asked whether a credential
            changed in another process (``diemcau site revoke``), and ``staff``
            whose sessions ended; 0: never.
        staff: every staff account's session epoch (`staff_epochs`).
    """

    def __init__(
        self,
        sites: SiteDirectory,
        *,
        enabled: bool = False,
        local_relays: int = 1,
        base_dir: Path | None = None,
        declared: NodeSource | None = None,
        tls: ServerFiles | None = None,
        floors: LiveFloors | None = None,
        notifier: SiteNotifier | None = None,
        alerts: AlertSink | None = None,
        credential_poll_s: float = 5.0,
        staff: StaffEpochs | None = None,
    ) -> None:
        self.sites = sites
        self.enabled = enabled
        self.local_relays = max(1, local_relays)
        self.base_dir = base_dir
        self._declared = declared
        self.tls = tls
        self._floors = floors
        self._notifier = notifier
        self._alerts = alerts
        self.plane: MediaPlane | None = None
        self.orchestrator: MediaOrchestrator | None = None
        self.credential_poll_s = credential_poll_s
        self._poll: asyncio.Task[None] | None = None
        self._seen_generation = -1
        self._staff = staff
        # The staff accounts' epochs at the last look (None: not looked yet).
        self._seen_staff: Epochs | None = None

    async def start(self) -> None:
        """Start the plane when configured; without one the server runs control only."""
        if self.enabled and self.orchestrator is None:
            await self.start_plane()
        if self.credential_poll_s > 0 and self._poll is None:
            self._poll = asyncio.create_task(self._poll_credentials(), name="media-credentials")

    async def start_plane(self, local_relays: int | None = None) -> MediaOrchestrator:
        """Start a plane now (declared nodes, or a local central and `local_relays` relays).

        Raises whatever keeps Janus from starting; nothing is installed then.
        """
        nodes, turn = self._declared() if self._declared is not None else (None, ())
        plane = await start_media_plane(
            await site_refs(self.sites),
            nodes=nodes,
            turn=turn,
            local_relays=local_relays or self.local_relays,
            base_dir=self.base_dir,
            tls=self.tls,
        )
        try:
            orch = plane.orchestrator
            if self._floors is not None:
                for meeting_id, codes in (await self._floors()).items():
                    orch.restore_program(meeting_id, list(codes))
            await orch.reconcile()
        except BaseException:
            await plane.close()
            raise
        self.plane = plane
        self.install(orch)
        return orch

    def install(self, orch: MediaOrchestrator) -> None:
        """Serve programs and grants from `orch` and react to its nodes' health.

        `start_plane` installs the plane it started; tests install one they run.
        """
        orch.registry.on_change(self._node_changed)
        orch.add_move_listener(self._sites_moved)
        self.orchestrator = orch

    def uninstall(self) -> None:
        """Stop serving from the installed orchestrator (its owner closes it)."""
        self.orchestrator = None

    async def stop(self) -> None:
        """Stop health checks and sync; stop local Janus processes (by PID)."""
        await cancel_and_wait(self._poll)
        self._poll = None
        self.orchestrator = None
        plane, self.plane = self.plane, None
        if plane is not None:
            await plane.close()

    async def _node_changed(self, node: JanusNode, up: bool) -> None:
        """A node that stops answering raises an alert; its recovery clears it."""
        if self._alerts is None or self.orchestrator is None:
            return
        if up:
            await self._alerts.clear_alert(NODE_ALERT, node.name)
            return
        await self._alerts.raise_alert(
            NODE_ALERT,
            node.name,
            message_vi=f"Máy chủ truyền thông {node.name} ({node.role}) không phản hồi",
            message_en=f"Media node {node.name} ({node.role}) is not answering",
            severity="critical",
            details={"node": node.name, "role": node.role, "provinces": list(node.provinces)},
        )

    async def _sites_moved(self, moves: list[Move]) -> None:
        """Sites whose relay changed are told at once to fetch a new media grant.

        Live only (``durable=False``): a site that is offline asks for a grant when it
        comes back anyway, so a stale move must not be replayed.
        """
        if self._notifier is None or not moves:
            return
        by_code = await self.sites.by_codes(m.site for m in moves)
        by_node: dict[tuple[str | None, str | None], list[int]] = {}
        for move in moves:
            site = by_code.get(move.site)
            if site is not None:
                by_node.setdefault((move.old, move.new), []).append(site.id)
        for (old, new), site_ids in by_node.items():
            await self._notifier.send(
                site_ids, "media.moved", {"from": old, "to": new}, durable=False
            )

    # --- credentials ------------------------------------------------------------------

    async def credentials_changed(self, site_ids: Collection[int]) -> list[SweepReport]:
        """Sites whose credential staff just rotated or revoked lose the old one's media
        rights now (`MediaOrchestrator.update_credential`); returns the sweeps made."""
        orch = self.orchestrator
        if orch is None:
            return []
        infos = await self.sites.by_ids(site_ids, reload_missing=True)
        return await self._apply_credentials(orch, infos.values())

    async def _apply_credentials(
        self, orch: MediaOrchestrator, infos: Iterable[SiteInfo]
    ) -> list[SweepReport]:
        changed: dict[str, int | None] = {}
        for info in infos:
            ref = orch.sites.get(info.code)
            if ref is None:
                if info.province_id is not None and not info.revoked:
                    orch.add_sites([_site_ref(info)])  # provisioned since the plane started
            elif ref.credential != _credential(info):
                changed[info.code] = _credential(info)
        return await orch.update_credentials(changed) if changed else []

    async def _poll_credentials(self) -> None:
        """Follow the directory: a rotation or revocation made by another process (the
        CLI) takes the old credential's media rights back within one poll; and the
        staff accounts (`follow_staff`), first at once so that what changes after the
        server started is followed."""
        await self._follow_staff_logged()
        while True:
            await asyncio.sleep(self.credential_poll_s)
            orch = self.orchestrator
            if orch is None:
                continue
            try:
                await self.sites.refresh_if_changed()
                if self.sites.generation != self._seen_generation:
                    self._seen_generation = self.sites.generation
                    await self._apply_credentials(orch, await self.sites.all(include_revoked=True))
            except Exception:
                log.exception("media: following site credentials failed")
            await self._follow_staff_logged()

    # --- staff accounts ---------------------------------------------------------------

    async def _follow_staff_logged(self) -> None:
        try:
            await self.follow_staff()
        except Exception:
            log.exception("media: following staff accounts failed")

    async def follow_staff(self) -> list[SweepReport]:
        """Accounts whose sessions ended since the last look (`staff_epochs`) lose every
        Janus session their grants opened, on every node
        (`MediaOrchestrator.staff_sessions_ended`); returns the sweeps made.

        While no plane runs only the first look is kept, so a plane installed later
        ends what changed since then.
        """
        if self._staff is None:
            return []
        now = dict(await self._staff())
        orch = self.orchestrator
        if orch is None:
            if self._seen_staff is None:
                self._seen_staff = now
            return []
        ended = sessions_ended(self._seen_staff, now)
        if not ended:
            self._seen_staff = now
            return []
        log.info("media: ending the media sessions of staff %s", sorted(ended))
        reports = await orch.staff_sessions_ended(sorted(ended))
        self._seen_staff = now  # after the sweep: if it raised, the next poll tries again
        return reports
