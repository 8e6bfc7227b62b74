"""The desired state of the nodes, computed from the plane's state: rooms, links, looks.

Nothing here touches a node: `sync` and `reconcile` bring the nodes to what
these functions return. Room layout in `program` (program, chair, inspect
rooms); a site's uplink room is on the site's relay: the site publishes its
camera and microphone there and only there. The chair console subscribes to it
for a spot-check; a floor grant remotizes that feed once to central's program
room (and into its own relay's), and central forwards it on to every other
relay's program room (1.1.2 refuses to remotize a remote publisher but
forwards one: `cascade.RemoteLink.via`), so the speaker's relay sends one copy
whatever the number of relays.
"""

from __future__ import annotations

import time

from diemcau.media.cascade import RemoteLink
from diemcau.media.ids import feed_id, room_id
from diemcau.media.looks import LOOK_SECONDS
from diemcau.media.program import Program
from diemcau.media.rooms import RoomSpec
from diemcau.media.state import PlaneState

__all__ = ["desired_links", "desired_looks", "desired_rooms"]


def desired_rooms(state: PlaneState) -> dict[str, dict[int, RoomSpec]]:
    """Per healthy node: room id → what the room is for."""
    central = state.central.name
    out: dict[str, dict[int, RoomSpec]] = {n.name: {} for n in state.registry.healthy()}
    for m in state.meetings.values():
        for rooms in out.values():
            rooms[m.room] = RoomSpec("program", m.meeting_id)
        if central in out:
            out[central][m.chair_room] = RoomSpec("chair", m.meeting_id, m.chair_generation)
            if m.inspect is not None:
                out[central][m.inspect_room] = RoomSpec("inspect", m.meeting_id)
    sites = set(state.granted)
    for m in state.meetings.values():
        sites.update(m.floor)
        if m.inspect is not None:
            sites.add(m.inspect)
    for site in sites:
        node = state.plan.assignment.get(site)
        if node in out:
            out[node][room_id("uplink", site)] = state.uplink_spec(site)
    return out


def desired_links(state: PlaneState) -> set[RemoteLink]:
    """Chair and each floor speaker → the program room on central and every relay.

    A speaker's feed goes from its uplink room to central's program room and
    its own relay's; with ``floor_fanout="central"`` central forwards it on
    to every other relay, otherwise the speaker's relay sends each copy.
    """
    relays = [n.name for n in state.registry.healthy("relay")]
    central = state.central.name
    if not state.up(central):
        return set()
    links: set[RemoteLink] = set()
    for m in state.meetings.values():
        for target in [central, *relays]:
            links.add(RemoteLink(central, m.chair_room, m.chair_feed, target, m.room, "chair"))
        links |= _floor_links(state, m, [central, *relays])
        node = state.plan.assignment.get(m.inspect or "")
        if m.inspect is not None and node is not None and state.up(node):
            links.add(
                RemoteLink(
                    node,
                    room_id("uplink", m.inspect),
                    feed_id("site", m.inspect),
                    central,
                    m.inspect_room,
                    m.inspect,
                )
            )
    return links


def _floor_links(state: PlaneState, m: Program, targets: list[str]) -> set[RemoteLink]:
    """Each floor speaker of ``m`` → its program room on every node of ``targets``."""
    central = state.central.name
    links: set[RemoteLink] = set()
    for site in m.floor:
        node = state.plan.assignment.get(site)
        if node is None or not state.up(node):
            continue
        uplink, feed = room_id("uplink", site), feed_id("site", site)
        for target in targets:
            if state.floor_fanout == "central" and target not in (central, node):
                links.add(RemoteLink(central, m.room, feed, target, m.room, site, "forward"))
            else:
                links.add(RemoteLink(node, uplink, feed, target, m.room, site))
    return links


def desired_looks(state: PlaneState) -> dict[str, tuple[str, int]]:
    """Site → (relay, uplink room) of every site watched at full quality now.

    Floor speakers (carried to every relay), a site whose spot-check is
    recorded (its feed in the inspect room) and sites spot-checked in the
    last `LOOK_SECONDS`; their browsers send the high simulcast layer.
    Spot-checks older than that are forgotten here.
    """
    now = time.monotonic()
    for site in [s for s, until in state.spot_checked.items() if until <= now]:
        del state.spot_checked[site]
    out: dict[str, tuple[str, int]] = {}
    watched = {s for m in state.meetings.values() for s in m.floor}
    watched |= {m.inspect for m in state.meetings.values() if m.inspect is not None}
    for site in watched | set(state.spot_checked):
        node = state.plan.assignment.get(site)
        if node is not None and state.up(node):
            out[site] = (node, room_id("uplink", site))
    return out


def look_now(state: PlaneState, site: str) -> None:
    """Watch ``site`` at full quality for the next `LOOK_SECONDS` (a spot-check)."""
    state.spot_checked[site] = time.monotonic() + LOOK_SECONDS
