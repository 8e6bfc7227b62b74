"""Who is being watched: control-plane participants that switch a site's high layer on.

A site publishes simulcast (web/static/janus.js): a low layer (~150 kbps) that
the video wall and the relay's load are sized for, and a high layer that costs
the site's uplink and its relay's CPU for nothing unless someone watches it at
full quality: the floor (the speaker is carried to every relay) and a chair's
spot-check. The site's browser keeps its high layer off until a participant
named `LOOK_DISPLAY` is in its uplink room, which is created with
``notify_joining`` so the browser is told when that participant joins and
leaves (and, when it republishes, finds it among the room's ``attendees``).

`Looks` holds one such participant per watched site, on the control plane's
own session with the site's relay; `apply` makes the set equal what the
orchestrator wants (floor speakers, and sites spot-checked in the last
`LOOK_SECONDS`). A control-plane restart drops its session: Janus removes the
participants when the session times out, and the new control plane joins again.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from diemcau.media.control import NodeControl
from diemcau.media.janus import JanusError, JanusHandle

__all__ = ["LOOK_DISPLAY", "LOOK_SECONDS", "Looks"]

log = logging.getLogger(__name__)

LOOK_DISPLAY = "diemcau-look"
# How long a spot-check keeps a site's high layer on (each grant renews it).
LOOK_SECONDS = 90.0


@dataclass
class _Look:
    node: str
    room: int
    handle: JanusHandle


class Looks:
    """The looking participants the control plane holds, per site.

    Args:
        control: the `NodeControl` of a node by name.
    """

    def __init__(self, control: Callable[[str], NodeControl]) -> None:
        self._control = control
        self._held: dict[str, _Look] = {}

    def watched(self) -> dict[str, tuple[str, int]]:
        """Site → (node, room) of every look held now."""
        return {site: (lk.node, lk.room) for site, lk in self._held.items()}

    async def apply(self, desired: dict[str, tuple[str, int]]) -> list[str]:
        """Hold a look in exactly the ``desired`` sites' rooms; returns errors."""
        errors: list[str] = []
        for site, look in list(self._held.items()):
            ctl = self._control(look.node)
            if desired.get(site) != (look.node, look.room) or not ctl.holds(look.handle):
                del self._held[site]
                if ctl.holds(look.handle):
                    try:
                        await look.handle.detach()
                    except (OSError, JanusError) as exc:
                        errors.append(f"leave look of {site}: {exc}")
        for site, (node, room) in sorted(desired.items()):
            if site in self._held:
                continue
            try:
                # A fresh id: one left by a crashed control plane may linger
                # until its session times out.
                handle = await self._control(node).join_silently(
                    room, secrets.randbelow(1 << 48) + 1, LOOK_DISPLAY
                )
            except (OSError, JanusError) as exc:
                errors.append(f"look at {site} on {node}: {exc}")
                continue
            self._held[site] = _Look(node, room, handle)
        return errors

    def forget_node(self, node: str) -> None:
        """The node restarted or died: its participants are gone with it."""
        for site in [s for s, lk in self._held.items() if lk.node == node]:
            del self._held[site]
