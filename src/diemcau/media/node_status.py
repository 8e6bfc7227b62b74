"""Each node's status for the operator dashboard: health, load, sites served, links."""

from __future__ import annotations

from dataclasses import dataclass

from diemcau.media.cascade import Cascade
from diemcau.media.node import NodeRegistry
from diemcau.media.topology import Plan

__all__ = ["NodeStatus", "node_status"]


@dataclass(frozen=True)
class NodeStatus:
    """One node's line on the operator dashboard (the API answers it as it is)."""

    node: str
    role: str
    provinces: list[str]
    up: bool
    last_error: str
    janus_sessions: int
    sites: int
    capacity: int
    links_in: int
    links_out: int


def node_status(registry: NodeRegistry, plan: Plan, cascade: Cascade) -> list[NodeStatus]:
    """Per node: health, Janus sessions, sites served against capacity, links in and out."""
    counts = plan.counts()
    records = cascade.records
    out: list[NodeStatus] = []
    for node in registry.nodes():
        st = registry.state(node.name)
        out.append(
            NodeStatus(
                node=node.name,
                role=node.role,
                provinces=list(node.provinces),
                up=st.up,
                last_error=st.last_error,
                janus_sessions=st.sessions,
                sites=counts.get(node.name, 0),
                capacity=node.capacity,
                links_in=sum(1 for lk in records if lk.target_node == node.name),
                links_out=sum(1 for lk in records if lk.source_node == node.name),
            )
        )
    return out
