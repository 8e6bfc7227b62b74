"""The demo's floor rotation: the next present media site gets the floor every few seconds.

The floor passes through the meetings service as the chair console would pass it, so
the audit log, the site terminals and the media plane all see each change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from diemcau.accounts.service import StaffPrincipal
from diemcau.demo.output import say
from diemcau.demo.pacing import pause
from diemcau.demo.services import DemoServices, meetings_actor
from diemcau.demo.sites import DemoSite
from diemcau.logs import one_line

__all__ = ["rotate_floor"]


async def rotate_floor(
    services: DemoServices,
    chair: StaffPrincipal,
    meeting_id: int,
    sites: Sequence[DemoSite],
    every: float,
    stop: asyncio.Event,
) -> None:
    """Every ``every`` seconds until ``stop``, give the floor to the next present site."""
    meetings = services.meetings
    turn = 0
    while await pause(stop, every):
        present = [s for s in sites if meetings.attendance.is_present(meeting_id, s.site_id)]
        if not present:
            continue
        site = present[turn % len(present)]
        turn += 1
        try:
            decision = await meetings.floor.grant(meetings_actor(chair), meeting_id, [site.site_id])
        except Exception as exc:
            say(f"floor: grant to {site.code} refused: {one_line(exc)}")
            continue
        media = services.media
        node = media.plan.assignment.get(site.code, "?") if media is not None else "-"
        say(f"floor -> {site.name} ({site.code}, {node}), version {decision.version}")
