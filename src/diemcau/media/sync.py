"""The sync pass that brings every node to the desired state, run in a background loop.

One pass: dropped control connections reconnect (a node found restarted by
its sentinel room, `control_link`, is forgotten and rebuilt in the same pass),
the desired rooms are made, the cascade's links (`Cascade.apply`) and the
looks (`Looks.apply`) are made to match `desired`. The loop repeats it every
``interval`` seconds, which also picks up feeds published late.
"""

from __future__ import annotations

import asyncio
import logging

from diemcau.media.cascade import Cascade, SyncReport
from diemcau.media.desired import desired_links, desired_looks, desired_rooms
from diemcau.media.janus import JanusError
from diemcau.media.looks import Looks
from diemcau.media.made_rooms import ensure_rooms
from diemcau.media.node import JanusNode
from diemcau.media.state import PlaneState
from diemcau.tasks import cancel_and_wait

__all__ = ["Syncer"]

log = logging.getLogger(__name__)


class Syncer:
    """Sync passes over the plane's state, once on demand or in a loop."""

    def __init__(self, state: PlaneState, cascade: Cascade, looks: Looks, interval: float) -> None:
        self._state = state
        self._cascade = cascade
        self._looks = looks
        self._interval = interval
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self.last_report = SyncReport()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="media-sync")

    async def stop(self) -> None:
        self._closing = True
        await cancel_and_wait(self._task)

    async def _loop(self) -> None:
        while not self._closing:
            await asyncio.sleep(self._interval)
            try:
                await self.sync()
            except Exception:
                log.exception("media sync failed")

    async def sync(self) -> SyncReport:
        """One pass: restarted nodes rebuilt, rooms exist, links and looks match the
        desired state."""
        state = self._state
        for _ in range(2):
            await self._check_restarts()
            async with state.lock:
                await ensure_rooms(state, desired_rooms(state))
                self.last_report = await self._cascade.apply(desired_links(state))
                self.last_report.errors += await self._looks.apply(desired_looks(state))
            if not state.restarted:
                break
            # Found during this pass (a request reconnected): rebuild at once.
        return self.last_report

    async def _check_restarts(self) -> None:
        """Reconnect dropped control connections (a restart is found by the sentinel room), then
        rebuild every node found restarted."""
        state = self._state
        controls = state.controls()
        for node in state.registry.healthy():
            ctl = controls.get(node.name)
            if ctl is not None and ctl.connection_lost:
                try:
                    await asyncio.wait_for(ctl.check(), 2.0)
                except (OSError, JanusError, TimeoutError) as exc:
                    log.info("node %s not reachable yet: %s", node.name, exc)
        while state.restarted:
            name = state.restarted.pop()
            found = next((n for n in state.registry.nodes() if n.name == name), None)
            if found is not None:
                await self.node_restarted(found)

    async def node_restarted(self, node: JanusNode) -> None:
        """A node came back empty before the health checks saw it down (its supervisor
        restarted it within a second or two).

        Its rooms are recreated, and the other end of every link touching it is
        cleaned now: a relay's viewers of the chair are told the feed ended (and
        subscribe again when it is rebuilt) instead of watching a frozen picture,
        and a source stops sending to ports the new process may reuse. Sites stay
        on their relays; their browsers reconnect when their sessions drop.
        """
        state = self._state
        async with state.lock:
            state.rooms.pop(node.name, None)
            self._looks.forget_node(node.name)
            await self._cascade.node_lost(
                node.name, lambda n: n != node.name and state.registry.is_up(n)
            )
