"""How the plane answers a node's health changing: its sites move, its state is rebuilt.

The node registry's health checks call `Failover.on_change`; a relay that goes
down has its sites reassigned to healthy relays (and the other ends of its
links cleaned), a node that comes back empty is forgotten and rebuilt by the
next sync pass. Listeners hear the moves (the presence layer tells each moved
site to fetch a new grant and reconnect to its new relay).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from diemcau.media.cascade import Cascade, SyncReport
from diemcau.media.looks import Looks
from diemcau.media.node import JanusNode
from diemcau.media.state import PlaneState
from diemcau.media.topology import Move

__all__ = ["Failover", "MoveListener"]

log = logging.getLogger(__name__)

MoveListener = Callable[[list[Move]], Awaitable[None] | None]


class Failover:
    """Node down and node up, as the control plane handles them.

    Args:
        sync: one sync pass (`sync.Syncer.sync`), run after each change.
    """

    def __init__(
        self,
        state: PlaneState,
        cascade: Cascade,
        looks: Looks,
        sync: Callable[[], Awaitable[SyncReport]],
    ) -> None:
        self._state = state
        self._cascade = cascade
        self._looks = looks
        self._sync = sync
        self.listeners: list[MoveListener] = []
        # Off until the first plan: the first health check's changes are not failures.
        self.armed = False

    async def on_change(self, node: JanusNode, up: bool) -> None:
        """A node's health changed: handle it, then tell the listeners who moved."""
        if not self.armed:
            return  # the first health check; start() plans from its result
        moves = await (self.node_up(node) if up else self.node_down(node))
        if moves:
            log.info("node %s %s: %d sites move", node.name, "up" if up else "down", len(moves))
            for cb in list(self.listeners):
                result = cb(moves)
                if result is not None:
                    await result

    async def node_down(self, node: JanusNode) -> list[Move]:
        """Reassign the node's sites to healthy relays and clean its links' other ends.

        Returns the moves; the caller tells each moved site (a new grant).
        """
        state = self._state
        async with state.lock:
            state.rooms.pop(node.name, None)
            self._looks.forget_node(node.name)
            await self._cascade.node_lost(node.name, state.up)
            moves = state.replan() if node.role == "relay" else []
        await self._sync()
        return moves

    async def node_up(self, node: JanusNode) -> list[Move]:
        """A node (re)started empty: forget its old state and rebuild what it should hold.

        Sites stay where they are (no shuffle); unassigned sites get placed.
        """
        state = self._state
        async with state.lock:
            state.rooms.pop(node.name, None)
            self._looks.forget_node(node.name)
            self._cascade.forget_node(node.name)
            await state.control(node.name).reset(check_restart=False)
            state.control(node.name).pins.clear()
            moves = state.replan() if node.role == "relay" else []
        await self._sync()
        return moves
