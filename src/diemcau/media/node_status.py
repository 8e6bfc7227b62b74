"""Each node's status for the operator dashboard: health, load, sites served, links."""

from __future__ import annotations

from typing import Any

from diemcau.media.cascade import Cascade
from diemcau.media.node import NodeRegistry
from diemcau.media.topology import Plan

__all__ = ["node_status"]


def node_status(registry: NodeRegistry, plan: Plan, cascade: Cascade) -> list[dict[str, Any]]:
    """Per node: health, Janus sessions, sites served against capacity, links in and out."""
    counts = plan.counts()
    records = cascade.records
    out: list[dict[str, Any]] = []
    for node in registry.nodes():
        st = registry.state(node.name)
        out.append(
            {
                "node": node.name,
                "role": node.role,
                "provinces": list(node.provinces),
                "up": st.up,
                "last_error": st.last_error,
                "janus_sessions": st.sessions,
                "sites": counts.get(node.name, 0),
                "capacity": node.capacity,
                "links_in": sum(1 for lk in records if lk.target_node == node.name),
                "links_out": sum(1 for lk in records if lk.source_node == node.name),
            }
        )
    return out
