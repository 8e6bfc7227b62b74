"""The demo's local media plane: Janus processes it starts, declared to the server as nodes.

The demo starts one central and ``--relays`` relay Janus processes itself (a
`LocalCluster`) before the server, and declares them to the server the way a
deployment declares its Janus nodes (``DIEMCAU_MEDIA_NODES``, docs/media.md): the
server then runs its ordinary media plane over them. If Janus is missing or cannot
start, the demo says so and the server runs the control plane only. The processes
end with the demo, after the server.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from diemcau.demo.output import say
from diemcau.demo.sites import DemoSite
from diemcau.media.cluster import LocalCluster
from diemcau.media.plane import local_relay_layout
from diemcau.media.topology import SiteRef
from diemcau.tls.certs import ServerFiles

__all__ = ["NODES_ENV", "declare_nodes", "start_local_janus"]

NODES_ENV = "DIEMCAU_MEDIA_NODES"


async def start_local_janus(
    sites: Sequence[DemoSite], relays: int, base_dir: Path, tls: ServerFiles | None = None
) -> LocalCluster | None:
    """Start central + ``relays`` relays sharing the provinces of ``sites``; None if not.

    With ``tls`` (the server's certificate) the nodes serve browsers over ``wss://``.
    """
    if relays <= 0:
        say("media: off (--no-media); control plane only")
        return None
    if shutil.which("janus") is None:
        say("media: no 'janus' binary on PATH (scripts/setup.sh installs it); control only")
        return None
    refs = [SiteRef(s.code, s.province, s.name) for s in sites if s.province]
    cluster = LocalCluster(relays=local_relay_layout(refs, relays), base_dir=base_dir, tls=tls)
    t0 = time.perf_counter()
    try:
        await cluster.start()
    except Exception as exc:
        say(f"media: the local Janus processes failed to start ({exc!r}); control plane only")
        return None
    say(f"media: {len(cluster.processes)} Janus processes in {time.perf_counter() - t0:.1f} s")
    return cluster


def declare_nodes(cluster: LocalCluster, path: Path) -> dict[str, str]:
    """Write the cluster's node list to ``path`` (owner-only: it holds the nodes' secrets).

    Returns the environment that makes a server in this process use them.
    """
    nodes = [asdict(node) for node in cluster.nodes()]
    for node in nodes:
        node["provinces"] = list(node["provinces"])
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(nodes, fh, indent=1)
    return {NODES_ENV: str(path)}
