"""The programs the meetings layer runs on the plane: started, given a floor, stopped.

Each change is written into the plane's state (`PlaneState.meetings`) and
followed by one sync pass, which makes the rooms and links the change wants
(`desired`); stopping a program also destroys its rooms on every healthy node.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import TypedDict

from diemcau.limits import MAX_SPEAKERS
from diemcau.media.cascade import SyncReport
from diemcau.media.chair import ChairGrants
from diemcau.media.errors import MediaError
from diemcau.media.grants import ChairGrant
from diemcau.media.janus import JanusError
from diemcau.media.program import Program, ProgramFeed
from diemcau.media.state import PlaneState

__all__ = ["FloorFeeds", "Programs"]


class FloorFeeds(TypedDict):
    """The program feeds sites subscribe to after a floor decision."""

    meeting_id: str
    feeds: list[ProgramFeed]


class Programs:
    """Program, floor and inspection of each meeting, as the media plane carries them.

    Args:
        sync: one sync pass (`sync.Syncer.sync`).
        chair: the chair feed's grants (a loan ends with its program).
    """

    def __init__(
        self,
        state: PlaneState,
        sync: Callable[[], Awaitable[SyncReport]],
        chair: ChairGrants,
    ) -> None:
        self._state = state
        self._sync = sync
        self._chair = chair

    async def start(self, meeting_id: str | int) -> ChairGrant:
        """Create the meeting's program rooms on every node; returns the chair's grant."""
        meetings = self._state.meetings
        key = str(meeting_id)
        if key not in meetings:
            meetings[key] = Program.new(key)
        await self._sync()
        return self._chair.grant(meetings[key], "control")

    def restore(self, meeting_id: str | int, floor: list[str] | None = None) -> None:
        """Re-declare a running program after a control restart, touching no node."""
        key = str(meeting_id)
        self._state.meetings[key] = Program.new(key, floor)

    async def set_floor(self, meeting_id: str | int, site_codes: list[str]) -> FloorFeeds:
        """Give the floor to 0, 1 or 2 sites; returns the program feeds to subscribe to."""
        m = self._state.program(meeting_id)
        codes = list(dict.fromkeys(site_codes))
        if len(codes) > MAX_SPEAKERS:
            raise MediaError(f"at most {MAX_SPEAKERS} sites may hold the floor")
        for code in codes:
            self._state.site_node(code)
        m.floor = codes
        await self._sync()
        return FloorFeeds(meeting_id=m.meeting_id, feeds=m.feeds())

    async def set_inspection(self, meeting_id: str | int, site_code: str | None) -> None:
        """Carry one site's own feed into the meeting's inspect room on central (None: stop)."""
        m = self._state.program(meeting_id)
        if site_code is not None:
            self._state.site_node(site_code)
        m.inspect = site_code
        await self._sync()

    async def stop(self, meeting_id: str | int) -> None:
        """Remove the meeting's links and destroy its program rooms everywhere."""
        state = self._state
        m = state.meetings.pop(str(meeting_id), None)
        self._chair.end_loan(str(meeting_id))
        if m is None:
            return
        await self._sync()
        for node in state.registry.healthy():
            for room in (m.room, m.chair_room, m.inspect_room):
                with contextlib.suppress(OSError, JanusError):
                    await state.control(node.name).destroy_room(room)
                state.rooms.get(node.name, set()).discard(room)
