"""Rooms the control plane makes on the nodes, each once, recorded in the plane's state.

`PlaneState.rooms` remembers what was made on each node, so a grant or a sync
pass asks a node only for a room it does not hold yet; callers hold
`PlaneState.lock`. The room's options come from `rooms.make_room`.
"""

from __future__ import annotations

from diemcau.media.ids import room_id
from diemcau.media.program import Program
from diemcau.media.rooms import RoomSpec, make_room
from diemcau.media.state import PlaneState

__all__ = ["ensure_program", "ensure_rooms", "ensure_uplink"]


async def ensure_rooms(state: PlaneState, desired: dict[str, dict[int, RoomSpec]]) -> None:
    """Make every desired room not made yet (``desired``: per node, room id → spec)."""
    for node, rooms in desired.items():
        have = state.rooms.setdefault(node, set())
        for room, spec in rooms.items():
            if room not in have:
                await make_room(state.control(node), room, spec)
                have.add(room)


async def ensure_uplink(state: PlaneState, node: str, site: str) -> int:
    """The site's uplink room on ``node`` (made once)."""
    room = room_id("uplink", site)
    if room not in state.rooms.setdefault(node, set()):
        await make_room(state.control(node), room, state.uplink_spec(site))
        state.rooms[node].add(room)
    return room


async def ensure_program(state: PlaneState, node: str, m: Program) -> str | None:
    """The meeting's program room on ``node`` made now if the sync loop has not yet;
    returns its pin."""
    if m.room not in state.rooms.setdefault(node, set()):
        await make_room(state.control(node), m.room, RoomSpec("program", m.meeting_id))
        state.rooms[node].add(m.room)
    return state.control(node).pins.get(m.room)
