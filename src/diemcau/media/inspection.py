"""Grants for inspections: a standby site's uplink, the inspector's view, a two-way call.

An inspection reuses the site's own uplink room on its relay (the room a spot-check
watches: `MediaOrchestrator.spot_check_grant`). A call adds one **call room** per site
on the same relay (``room_id("call", code)``): the inspector publishes its camera and
microphone there as ``feed_id("inspector", code)`` and the site alone subscribes. The
call never touches a program room, so a meeting's program does not change; ending the
call destroys the room, which cuts whoever still publishes or plays in it (a room token
the inspector kept cannot bring its feed back without a new call).

Each grant names exactly the rooms its holder needs: the site's names its uplink (to
publish, with the publish token its uplink room's allowed list holds for its credential)
and its call room (to play the inspector); the inspector's call grant names the call
room only, with a publish token made for that one call: the call room is made afresh
for each call with that token alone in its allowed list (its view of the site comes
from the spot-check grant). docs/media.md, "Inspections" and "Who may publish and
watch".
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from diemcau.media.errors import MediaError
from diemcau.media.grants import (
    Feed,
    GrantSigner,
    MediaGrant,
    Publish,
    WallGrant,
    WatchGrant,
)
from diemcau.media.ids import feed_id, room_id
from diemcau.media.orchestrator import MediaOrchestrator
from diemcau.media.rights import Holder, publish_token

__all__ = ["CallGrant", "InspectionGrants", "StandbyGrant", "call_room", "inspector_feed"]


class CallGrant(MediaGrant):
    """The inspector's: publish into the site's call room."""

    publish: Publish


class StandbyGrant(CallGrant):
    """A standby site's: publish its uplink, play the inspector who calls."""

    call: Feed


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
        self._sign = GrantSigner(orch.token_ttl, orch.session_ttl, orch.turn)

    async def watch_grant(self, site_code: str) -> WatchGrant:
        """The inspector's view of the site: its uplink feed (the full simulcast layer)."""
        return await self.orch.spot_check_grant(site_code)

    async def site_grant(self, site_code: str) -> StandbyGrant:
        """The site's standby grant: publish its uplink; play an inspector who calls.

        Raises `MediaError` for a site without a credential (revoked): it has no
        media rights at all.
        """
        ref = self.orch.sites.get(site_code)
        if ref is None or ref.credential is None:
            raise MediaError(f"site {site_code!r} has no credential")
        node = self.orch.site_node(site_code)
        uplink = room_id("uplink", site_code)
        # The orchestrator makes the site's uplink room with its allowed list (as it
        # does for the wall, which asks nobody to look at full quality).
        await self.orch.wall_grant([site_code])
        holder = Holder.site(site_code, ref.credential)
        return {
            "node": node.name,
            "ws_url": node.browser_ws_url,
            **self._sign.tokens(node, [uplink, call_room(site_code)], holder, site_code),
            "publish": {
                "room": uplink,
                "feed_id": feed_id("site", site_code),
                "token": publish_token(node, uplink, holder),
            },
            "call": {"room": call_room(site_code), "feed_id": inspector_feed(site_code)},
        }

    async def call_grant(self, site_code: str) -> CallGrant:
        """The inspector's: publish into the site's call room on the site's relay.

        The room is made again for this call, its allowed list holding this call's
        publish token only: no token of an earlier call publishes in it.
        """
        node = self.orch.site_node(site_code)
        room = call_room(site_code)
        holder = Holder.staff("call-" + secrets.token_hex(6))
        token = publish_token(node, room, holder)
        ctl = self.orch.control(node.name)
        await ctl.destroy_room(room)
        await ctl.ensure_room(room, f"call {site_code}", publishers=2, allowed=[token])
        return {
            "node": node.name,
            "ws_url": node.browser_ws_url,
            **self._sign.tokens(node, [room], holder, "inspector"),
            "publish": {"room": room, "feed_id": inspector_feed(site_code), "token": token},
        }

    async def end_call(self, site_code: str) -> None:
        """Destroy the site's call room: the inspector's feed stops reaching the site."""
        node = self.orch.site_node(site_code).name
        await self.orch.control(node).destroy_room(call_room(site_code))

    async def wall_grants(self, site_codes: Sequence[str]) -> list[WallGrant]:
        return await self.orch.wall_grant(list(site_codes))
