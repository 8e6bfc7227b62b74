"""Media plane orchestration: Janus nodes, their API, topology and forwarding.

The meetings layer uses `MediaOrchestrator` (program, floor, spot-check,
grants, failover); `LocalCluster` runs Janus nodes on this host for the demo
and tests; `JanusNode` declares a node running anywhere.
"""

from diemcau.media.cluster import LocalCluster
from diemcau.media.janus import JanusError
from diemcau.media.node import JanusNode, NodeRegistry
from diemcau.media.orchestrator import MediaError, MediaOrchestrator
from diemcau.media.plane import MediaPlane, start_media_plane
from diemcau.media.topology import Move, SiteRef

__all__ = [
    "JanusError",
    "JanusNode",
    "LocalCluster",
    "MediaError",
    "MediaOrchestrator",
    "MediaPlane",
    "Move",
    "NodeRegistry",
    "SiteRef",
    "start_media_plane",
]
