"""Grants for inspections: a standby site's uplink, the inspector's view, a two-way call.

An inspection reuses the site's own uplink room on its relay (the room a spot-check
watches: `MediaOrchestrator.spot_check_grant`). A call adds one **call room** per site
on the same relay (``room_id("call", code)``): the inspector publishes its camera and
microphone there as ``feed_id("inspector", code)`` and the site alone subscribes. The
call never touches a program room, so a meeting's program does not change; ending the
call destroys the room, which cuts whoever still publishes or plays in it (a room token
the inspector kept cannot bring its feed back without a new call).

Each grant names exactly the rooms its holder needs: the site's names its uplink (to
publish) and its call room (to play the inspector); the inspector's call grant names the
call room only (its view of the site comes from the spot-check grant). docs/media.md,
"Inspections".
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from diemcau.media.orchestrator import MediaOrchestrator, feed_id, room_id
from diemcau.media.turn import ice_servers

__all__ = ["InspectionGrants", "call_room", "inspector_feed"]


def call_room(site_code: str) -> int:
    """The VideoRoom id of a site's call room (on its relay)."""
    return room_id("call", site_code)


def inspector_feed(site_code: str) -> int:
    """The publisher id of the inspector calling a site (one call per site at a time)."""
    return feed_id("inspector", site_code)


class InspectionGrants:
    """Inspection grants over a running orchestrator (raises its `MediaError`)."""

    def __init__(self, orch: MediaOrchestrator) -> None:
        self.orch = orch

    def _tokens(self, node_name: str, rooms: list[int], label: str) -> dict[str, Any]:
        node = self.orch.registry.get(node_name)
        now = int(time.time())
        return {
            "node": node.name,
            "ws_url": node.browser_ws_url,
            "token": node.browser_token(self.orch.session_ttl),
            "room_token": node.room_token(rooms, self.orch.token_ttl),
            "expires_at": now + self.orch.token_ttl,
            "session_expires_at": now + self.orch.session_ttl,
            "ice_servers": ice_servers(self.orch.turn, label, now + self.orch.session_ttl),
        }

    async def _call_room(self, node_name: str, site_code: str) -> int:
        room = call_room(site_code)
        await self.orch.control(node_name).ensure_room(room, f"call {site_code}", publishers=2)
        return room

    async def watch_grant(self, site_code: str) -> dict[str, Any]:
        """The inspector's view of the site: its uplink feed (the full simulcast layer)."""
        return await self.orch.spot_check_grant(site_code)

    async def site_grant(self, site_code: str) -> dict[str, Any]:
        """The site's standby grant: publish its uplink; play an inspector who calls."""
        node = self.orch.site_node(site_code).name
        uplink = room_id("uplink", site_code)
        # The orchestrator creates the site's uplink room (as it does for the wall, which
        # asks nobody to look at full quality) and keeps it across reconciles.
        await self.orch.wall_grant([site_code])
        room = await self._call_room(node, site_code)
        return {
            **self._tokens(node, [uplink, room], site_code),
            "publish": {"room": uplink, "feed_id": feed_id("site", site_code)},
            "call": {"room": room, "feed_id": inspector_feed(site_code)},
        }

    async def call_grant(self, site_code: str) -> dict[str, Any]:
        """The inspector's: publish into the site's call room on the site's relay."""
        node = self.orch.site_node(site_code).name
        room = await self._call_room(node, site_code)
        return {
            **self._tokens(node, [room], "inspector"),
            "publish": {"room": room, "feed_id": inspector_feed(site_code)},
        }

    async def end_call(self, site_code: str) -> None:
        """Destroy the site's call room: the inspector's feed stops reaching the site."""
        node = self.orch.site_node(site_code).name
        await self.orch.control(node).destroy_room(call_room(site_code))

    async def wall_grants(self, site_codes: Sequence[str]) -> list[dict[str, Any]]:
        return await self.orch.wall_grant(list(site_codes))
