"""The reconcile after a control-plane restart: what the nodes hold made to match the state.

The meetings layer first re-declares running programs (`restore_program`,
`set_floor`); everything on the nodes that is not desired then goes: remote
publishers, remotizations and rooms. Intact links are adopted, rooms made by an
older control plane or for another credential are made again (a chair room keeps
the publish-token generation its description names), and a relay
sweep ends the sessions of credentials rotated or revoked while no control
plane ran.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from diemcau.media.cascade import Cascade, SyncReport
from diemcau.media.desired import desired_links, desired_rooms
from diemcau.media.ids import room_id
from diemcau.media.janus import JanusError
from diemcau.media.revoke import sweep_outdated
from diemcau.media.rights import Holder, new_pin
from diemcau.media.room_requests import RoomInfo
from diemcau.media.rooms import RoomSpec, chair_generation, is_stale
from diemcau.media.state import PlaneState

__all__ = ["reconcile"]

log = logging.getLogger(__name__)

Desired = dict[str, dict[int, RoomSpec]]


async def reconcile(
    state: PlaneState, cascade: Cascade, sync: Callable[[], Awaitable[SyncReport]]
) -> SyncReport:
    """Adopt intact links, remove orphans, rebuild (``sync``: one sync pass)."""
    async with state.lock:
        desired = desired_rooms(state)
        # Uplink rooms of every site assigned to a node stay: browsers may be in them.
        for site, node in state.plan.assignment.items():
            if node in desired:
                desired[node][room_id("uplink", site)] = state.uplink_spec(site)
        found, stale = await _survey(state, desired)
        report = await cascade.reconcile(desired_links(state), list(found), found)
        for node, rooms in found.items():
            ctl = state.control(node)
            for room in sorted((rooms - set(desired[node])) | stale[node]):
                await ctl.destroy_room(room)
                report.orphans_removed.append(f"room {room} on {node}")
            state.rooms[node] = rooms & set(desired[node])
            for room in sorted(state.rooms[node]):
                if desired[node][room].kind == "program":
                    # Its pin is not known here: viewers' next grants carry the new one.
                    await ctl.set_pin(room, new_pin())
    synced = await sync()
    report.created += synced.created
    report.adopted += synced.adopted
    report.waiting = synced.waiting
    # A credential rotated or revoked while no control plane ran: its holder's
    # sessions still live on the relays. One sweep of each relay ends them.
    relays = [r for r in state.registry.healthy("relay") if r.name in found]
    current = {Holder.site_key(code): ref.credential for code, ref in state.sites.items()}
    report.orphans_removed += await sweep_outdated(relays, current)
    return report


async def _survey(
    state: PlaneState, desired: Desired
) -> tuple[dict[str, set[int]], dict[str, set[int]]]:
    """Per reachable node: the rooms found to keep, and the desired ones found stale.

    Made by an older control plane or for another credential: their rights are
    not the ones wanted now (`rooms.is_stale`); they are made again.
    """
    found: dict[str, set[int]] = {}
    stale: dict[str, set[int]] = {}
    for node, want in desired.items():
        ctl = state.control(node)
        try:
            infos = await ctl.room_infos()
        except (OSError, JanusError) as exc:
            log.warning("reconcile: cannot list rooms on %s: %s", node, exc)
            continue
        if node == state.central.name:
            _adopt_chair_generations(state, infos, want)
        stale[node] = {
            i.room for i in infos if i.room in want and await is_stale(ctl, i, want[i.room])
        }
        found[node] = {i.room for i in infos} - stale[node]
    return found, stale


def _adopt_chair_generations(
    state: PlaneState, infos: list[RoomInfo], want: dict[int, RoomSpec]
) -> None:
    """Chair rooms whose publish token was replaced (a live meeting lost a delegate,
    `chair_guard`) keep their generation: a restarted control plane must not make
    the room again with the first token, which a removed delegate may hold."""
    for info in infos:
        spec = want.get(info.room)
        if spec is None or spec.kind != "chair":
            continue
        generation = chair_generation(info.description, spec.key)
        m = state.meetings.get(spec.key)
        if generation is not None and m is not None and generation > m.chair_generation:
            m.chair_generation = generation
            want[info.room] = RoomSpec("chair", spec.key, generation)
