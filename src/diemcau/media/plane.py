"""Start the media plane for a server: local Janus processes or declared nodes.

The server (or ``diemcau demo``) calls `start_media_plane` once, installs
``plane.orchestrator`` where the meetings and web layers find it, lets the
meetings layer re-declare running programs (`MediaOrchestrator.restore_program`),
then calls ``await plane.orchestrator.reconcile()`` once: reconcile must come
after the restore, or it would remove the rooms of meetings still running.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from diemcau.media.cluster import LocalCluster
from diemcau.media.config import nodes_from_env
from diemcau.media.node import JanusNode
from diemcau.media.orchestrator import MediaOrchestrator
from diemcau.media.topology import SiteRef
from diemcau.media.turn import TurnServer
from diemcau.tls.certs import ServerFiles

__all__ = ["MediaPlane", "local_relay_layout", "start_media_plane"]


@dataclass
class MediaPlane:
    """A running orchestrator and, when local, the Janus processes it drives."""

    orchestrator: MediaOrchestrator
    cluster: LocalCluster | None = None

    async def close(self) -> None:
        """Stop health checks and sync; stop local Janus processes (by PID)."""
        await self.orchestrator.close()
        if self.cluster is not None:
            await self.cluster.stop()


def local_relay_layout(
    sites: Sequence[SiteRef], relays: int
) -> list[tuple[str, tuple[str, ...], int]]:
    """Spread provinces over ``relays`` local relays, biggest provinces first.

    Each relay's capacity covers the sites it gets plus 20 % (and the whole
    country fits on the others if one fails), so the demo never leaves a site
    unplaced; in the demo most sites are on the control plane only.
    """
    per = Counter(s.province for s in sites)
    buckets: list[list[str]] = [[] for _ in range(max(1, relays))]
    loads = [0] * len(buckets)
    for prov, n in sorted(per.items(), key=lambda kv: (-kv[1], kv[0])):
        i = loads.index(min(loads))
        buckets[i].append(prov)
        loads[i] += n
    capacity = max(10, math.ceil(len(sites) * 1.2))
    return [
        (f"relay-{i + 1}", tuple(sorted(provs)), capacity)
        for i, provs in enumerate(buckets)
        if provs or i == 0
    ]


async def start_media_plane(
    sites: Sequence[SiteRef],
    *,
    nodes: Sequence[JanusNode] | None = None,
    local_relays: int = 3,
    base_dir: Path | None = None,
    token_ttl: int = 600,
    tls: ServerFiles | None = None,
    turn: Sequence[TurnServer] = (),
) -> MediaPlane:
    """Start an orchestrator over declared nodes, or over local Janus processes.

    Args:
        sites: every site with its province code.
        nodes: declared nodes; when None, ``DIEMCAU_MEDIA_NODES`` is read, and
            when that is unset a local cluster (central + ``local_relays``) starts.
        base_dir: where local configs and logs go (a temporary folder otherwise).
        tls: the server's certificate and key; local nodes then serve browsers
            over ``wss://`` with it.
        turn: TURN servers whose credentials every grant carries.
    """
    declared = list(nodes) if nodes is not None else nodes_from_env()
    cluster: LocalCluster | None = None
    if declared is None:
        cluster = LocalCluster(
            relays=local_relay_layout(sites, local_relays),
            base_dir=base_dir,
            tls=tls,
            supervise=True,
        )
        await cluster.start()
        declared = cluster.nodes()
    orch = MediaOrchestrator(declared, sites, token_ttl=token_ttl, turn=turn)
    try:
        await orch.start()
    except BaseException:
        if cluster is not None:
            await cluster.stop()
        raise
    return MediaPlane(orch, cluster)
