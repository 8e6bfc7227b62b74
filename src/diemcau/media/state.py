"""What the control plane knows of the media plane now, shared by the orchestrator's parts.

One `PlaneState` per orchestrator: the nodes (through their registry), the
sites and the relay each is assigned to (`plan`), the running programs, the
rooms made on each node, the sites given a grant and where, the sites
spot-checked lately, and the nodes found restarted. The parts that compute the
desired state (`desired`), make rooms (`made_rooms`), sync (`sync`), answer
node failures (`failover`), hand out grants (`site_grants`, `chair`) and take
rights back (`takeback`) all read and change this one object, always under
its `lock` when they touch the nodes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Literal

from diemcau.media.control import NodeControl
from diemcau.media.errors import MediaError
from diemcau.media.node import JanusNode, NodeRegistry
from diemcau.media.program import Program
from diemcau.media.rooms import RoomSpec
from diemcau.media.topology import Move, Plan, SiteRef, reassign

__all__ = ["FloorFanout", "PlaneState"]

FloorFanout = Literal["central", "source"]


class PlaneState:
    """The media plane's state as the control plane holds it.

    Args:
        registry: every node (exactly one with role ``central``).
        sites: every site that may join, with its province.
        floor_fanout: how a floor speaker's feed reaches the relays
            (`MediaOrchestrator`).
    """

    def __init__(
        self, registry: NodeRegistry, sites: Iterable[SiteRef], floor_fanout: FloorFanout
    ) -> None:
        centrals = registry.nodes("central")
        if len(centrals) != 1:
            raise MediaError("exactly one central node is required")
        self.registry = registry
        self.central = centrals[0]
        self.floor_fanout: FloorFanout = floor_fanout
        self.sites: dict[str, SiteRef] = {s.code: s for s in sites}
        self.plan = Plan()
        self.meetings: dict[str, Program] = {}
        # Rooms made on each node (so each is made once).
        self.rooms: dict[str, set[int]] = {}
        self.granted: set[str] = set()
        # Nodes each site was given a grant on: where its rights are taken back.
        self.site_nodes: dict[str, set[str]] = {}
        self.spot_checked: dict[str, float] = {}  # site -> until (monotonic)
        # Nodes whose control connection found them restarted (empty), to rebuild.
        self.restarted: set[str] = set()
        self.lock = asyncio.Lock()
        self._controls: dict[str, NodeControl] = {}

    def control(self, node: str) -> NodeControl:
        """The control connection of ``node`` (made again if the node was redeclared)."""
        ctl = self._controls.get(node)
        if ctl is None or ctl.node is not self.registry.get(node):
            ctl = NodeControl(self.registry.get(node), on_restart=self.restarted.add)
            self._controls[node] = ctl
        return ctl

    def controls(self) -> dict[str, NodeControl]:
        """The control connections made so far, by node name."""
        return dict(self._controls)

    def up(self, node: str) -> bool:
        return self.registry.is_up(node)

    def site_node(self, site_code: str) -> JanusNode:
        """The relay serving ``site_code`` now."""
        if site_code not in self.sites:
            raise MediaError(f"unknown site {site_code!r}")
        name = self.plan.assignment.get(site_code)
        if name is None:
            raise MediaError(f"no relay can take site {site_code!r}")
        return self.registry.get(name)

    def program(self, meeting_id: str | int | None) -> Program:
        """The running program of ``meeting_id`` (None: the only one running)."""
        if meeting_id is None:
            if len(self.meetings) != 1:
                raise MediaError("no single running program; name the meeting")
            return next(iter(self.meetings.values()))
        m = self.meetings.get(str(meeting_id))
        if m is None:
            raise MediaError(f"no program for meeting {meeting_id!r}")
        return m

    def uplink_spec(self, site: str) -> RoomSpec:
        ref = self.sites.get(site)
        return RoomSpec("uplink", site, ref.credential if ref is not None else None)

    def replan(self) -> list[Move]:
        """Place unassigned sites and those of relays now down; nobody else moves."""
        self.plan, moves = reassign(self.plan, self.sites.values(), self.registry.healthy("relay"))
        return moves
