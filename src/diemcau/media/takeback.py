"""Taking a rotated or revoked site credential's media rights back on the relays.

On each relay where a site had rights, once for a whole batch of changes: each
site's uplink room is destroyed (its publisher and whoever watched it are
kicked, the old publish token goes with the room's allowed list; the room is
made again for the new credential when needed); the pin of every program room
there changes (an old room token is worth nothing now); and every Janus session
whose handles were attached with a core token of an old credential is ended
(`revoke.end_sessions`). docs/media.md, "Who may publish and watch".
"""

from __future__ import annotations

import logging
from dataclasses import replace

from diemcau.media.ids import room_id
from diemcau.media.janus import JanusError
from diemcau.media.revoke import SweepReport, end_sessions
from diemcau.media.rights import Holder, new_pin
from diemcau.media.state import PlaneState

__all__ = ["update_credentials"]

log = logging.getLogger(__name__)


async def update_credentials(
    state: PlaneState, changes: dict[str, int | None]
) -> list[SweepReport]:
    """Sites' credentials were rotated (the new version) or revoked (None): take the
    media rights of the old ones back on every relay where they had any.

    A site that never had rights in this plane (no grant, no uplink room) costs
    nothing. Returns one sweep report per relay; a relay that fails is logged and
    skipped (one that restarts comes back empty).
    """
    per_node: dict[str, list[str]] = {}
    for code, credential in changes.items():
        ref = state.sites.get(code)
        if ref is None or ref.credential == credential:
            continue
        state.sites[code] = replace(ref, credential=credential)
        if credential is None:
            state.granted.discard(code)
        nodes = state.site_nodes.pop(code, set())
        assigned = state.plan.assignment.get(code)
        if assigned is not None and room_id("uplink", code) in state.rooms.get(assigned, ()):
            nodes.add(assigned)
        for name in nodes:
            per_node.setdefault(name, []).append(code)
    reports: list[SweepReport] = []
    for name, codes in sorted(per_node.items()):
        if not state.up(name):
            continue
        try:
            reports.append(await _take_back(state, name, {c: changes[c] for c in codes}))
        except (OSError, JanusError) as exc:
            log.warning("media rights of %s on %s not taken back: %s", codes, name, exc)
    return reports


async def _take_back(state: PlaneState, node: str, sites: dict[str, int | None]) -> SweepReport:
    ctl = state.control(node)
    async with state.lock:
        have = state.rooms.setdefault(node, set())
        for code in sites:
            await ctl.destroy_room(room_id("uplink", code))
            have.discard(room_id("uplink", code))
        for m in state.meetings.values():
            if m.room in have:
                await ctl.set_pin(m.room, new_pin())

    def doomed(holder: str) -> bool:
        return any(Holder.superseded(holder, c, v) for c, v in sites.items())

    return await end_sessions(state.registry.get(node), doomed)
