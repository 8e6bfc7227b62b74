"""Ending a grant holder's live Janus sessions on one node, found by their handles' token.

A revoked site may still hold a core token (it lives as long as a media session,
docs/media.md) and be in rooms: Janus checks tokens when they are shown, not
afterwards. Janus keeps, on every handle, the core token it was attached with,
and diemcau's core tokens name their holder (`rights.Holder`), so the Admin API
finds them: ``list_sessions``, ``list_handles`` and ``handle_info`` for each, then
``destroy_session`` closes every PeerConnection of a session whose handles belong
to the holder. The sweep costs one admin request per handle on the node, which is
paid only when a credential is rotated or revoked, never on a grant.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

from diemcau.media.janus import JanusAdmin, JanusError
from diemcau.media.node import JanusNode
from diemcau.media.rights import Holder, holder_of
from diemcau.records import JsonObject

__all__ = ["HandlePlace", "SweepReport", "end_sessions", "sweep_holders", "sweep_outdated"]

log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    """What one sweep of a node saw and ended."""

    node: str
    sessions: int = 0
    handles: int = 0
    ended: list[int] = field(default_factory=list)
    seconds: float = 0.0


# What VideoRoom tells of a handle (``plugin_specific`` of ``handle_info``: its
# ``type``, ``room`` ...), for a sweep that ends only the sessions in some rooms.
HandlePlace = Callable[[JsonObject], bool]


async def _holders_session(
    admin: JanusAdmin,
    session_id: int,
    doomed: Callable[[str], bool],
    report: SweepReport,
    where: HandlePlace | None,
) -> bool:
    """Whether one of the session's handles was attached by a doomed holder (and is
    ``where`` says, when it says)."""
    try:
        handles = await admin.list_handles(session_id)
    except JanusError:
        return False  # gone meanwhile
    for handle_id in handles:
        report.handles += 1
        try:
            info = await admin.handle_info(session_id, handle_id, plugin_only=True)
        except JanusError:
            continue
        holder = holder_of(str(info.get("token") or ""))
        if holder is None or not doomed(holder):
            continue
        place = info.get("plugin_specific")
        if where is None or (isinstance(place, dict) and where(place)):
            return True
    return False


async def end_sessions(
    node: JanusNode,
    doomed: Callable[[str], bool],
    *,
    concurrency: int = 16,
    timeout: float = 5.0,
    where: HandlePlace | None = None,
) -> SweepReport:
    """Destroy every session on ``node`` with a handle whose holder ``doomed`` names
    (and, with ``where``, whose VideoRoom state it accepts: a room, say).

    Raises what the Admin API connection raises (a node that does not answer);
    sessions and handles that vanish during the sweep are skipped.
    """
    report = SweepReport(node.name)
    t0 = time.monotonic()
    admin = await node.connect_admin(timeout)
    try:
        sessions = await admin.list_sessions()
        report.sessions = len(sessions)
        gate = asyncio.Semaphore(concurrency)

        async def look(session_id: int) -> None:
            async with gate:
                if await _holders_session(admin, session_id, doomed, report, where):
                    with contextlib.suppress(JanusError):
                        await admin.destroy_session(session_id)
                    report.ended.append(session_id)

        await asyncio.gather(*(look(s) for s in sessions))
    finally:
        await admin.close()
    report.seconds = time.monotonic() - t0
    return report


async def sweep_outdated(
    relays: Sequence[JanusNode], current: Mapping[str, int | None]
) -> list[str]:
    """End, on each relay, the sessions of site credentials that are not current
    (`rights.Holder.outdated`; ``current``: each site's key → its credential version,
    None when revoked). For a control plane that starts after credentials changed
    while none ran. Returns one line per relay that had any; a relay that fails is
    logged and skipped."""
    lines: list[str] = []
    for relay in relays:
        try:
            swept = await end_sessions(relay, lambda h: Holder.outdated(h, current))
        except (OSError, JanusError) as exc:
            log.warning("cannot sweep sessions on %s: %s", relay.name, exc)
            continue
        if swept.ended:
            lines.append(f"{len(swept.ended)} sessions of old credentials on {relay.name}")
    return lines


async def sweep_holders(nodes: Sequence[JanusNode], holders: Collection[str]) -> list[SweepReport]:
    """End, on each node, every session with a handle attached by one of ``holders``
    (staff accounts just disabled: whatever they watch or publish stops). A node that
    fails is logged and skipped; returns the sweeps made."""
    reports: list[SweepReport] = []
    doomed = set(holders)
    for node in nodes:
        try:
            reports.append(await end_sessions(node, doomed.__contains__))
        except (OSError, JanusError) as exc:
            log.warning("cannot end sessions of %s on %s: %s", sorted(doomed), node.name, exc)
    return reports
