"""The grants of sites' own feeds: a site's media grant, a spot-check, a page of the wall.

A site's uplink room is on its relay; the site publishes its camera and
microphone there and only there, with the publish token its room's allowed list
holds for its credential. A site's room token names its own relay's program
room and its own uplink room, so it cannot join another relay's rooms (another
node's secret) or another site's feed (another room). The chair console only
watches: a spot-check's or the wall's token names uplink rooms whose allowed
lists hold the sites' publish tokens, not the console's. docs/media.md, "Who
may publish and watch".
"""

from __future__ import annotations

import logging

from diemcau.media.desired import desired_looks, look_now
from diemcau.media.errors import MediaError
from diemcau.media.grants import GrantSigner, ProgramWatch, SiteGrant, WallGrant, WatchGrant
from diemcau.media.ids import feed_id, room_id
from diemcau.media.looks import Looks
from diemcau.media.made_rooms import ensure_program, ensure_uplink
from diemcau.media.state import PlaneState
from diemcau.media.takeback import update_credentials

__all__ = ["SiteGrants"]

log = logging.getLogger(__name__)


class SiteGrants:
    """Grants naming sites' uplink rooms: for the site itself, or for watching it."""

    def __init__(self, state: PlaneState, signer: GrantSigner, looks: Looks) -> None:
        self._state = state
        self._signer = signer
        self._looks = looks

    async def site(
        self, site_code: str, meeting_id: str | int | None, credential: int | None
    ) -> SiteGrant:
        """Everything a site's browser needs for media (`MediaOrchestrator.site_media_grant`)."""
        state = self._state
        cred = await self._credential(site_code, credential)
        node = state.site_node(site_code)
        state.granted.add(site_code)
        state.site_nodes.setdefault(site_code, set()).add(node.name)
        program: ProgramWatch | None = None
        async with state.lock:
            uplink = await ensure_uplink(state, node.name, site_code)
            if state.meetings:
                m = state.program(meeting_id)
                pin = await ensure_program(state, node.name, m)
                feeds = [f for f in m.feeds() if f["site"] != site_code]
                program = {"room": m.room, "pin": pin, "feeds": feeds}
        publish = (uplink, feed_id("site", site_code))
        return self._signer.site(node, site_code, cred, publish, program)

    async def _credential(self, site_code: str, proven: int | None) -> int:
        """The credential version a site's grant is for; refuses a site without one."""
        ref = self._state.sites.get(site_code)
        if ref is None:
            raise MediaError(f"unknown site {site_code!r}")
        if ref.credential is None:
            # Revoked: only a new credential, as the directory tells it, lifts that.
            raise MediaError(f"site {site_code!r} has no credential (revoked)")
        if proven is None or proven == ref.credential:
            return ref.credential
        if proven < ref.credential:
            raise MediaError(f"site {site_code!r}: this credential was replaced")
        # A rotation the plane has not heard of yet: the old credential's rights go first.
        await update_credentials(self._state, {site_code: proven})
        return proven

    async def spot_check(self, site_code: str, holder: str) -> WatchGrant:
        """Watch one site's own feed on its relay, at full quality for `LOOK_SECONDS`."""
        state = self._state
        node = state.site_node(site_code)
        look_now(state, site_code)
        async with state.lock:
            uplink = await ensure_uplink(state, node.name, site_code)
            errors = await self._looks.apply(desired_looks(state))
        for err in errors:
            log.warning("spot-check of %s: %s", site_code, err)
        return {
            "node": node.name,
            "ws_url": node.browser_ws_url,
            **self._signer.tokens(node, [uplink], holder),
            "subscribe": {"room": uplink, "feed_id": feed_id("site", site_code)},
        }

    async def wall(self, site_codes: list[str], holder: str) -> list[WallGrant]:
        """One grant per relay covering a page of sites (`MediaOrchestrator.wall_grant`)."""
        state = self._state
        per_node: dict[str, list[str]] = {}
        for code in dict.fromkeys(site_codes):
            per_node.setdefault(state.site_node(code).name, []).append(code)
        out: list[WallGrant] = []
        for name, codes in sorted(per_node.items()):
            node = state.registry.get(name)
            async with state.lock:
                rooms = [await ensure_uplink(state, name, code) for code in codes]
            out.append(
                {
                    "node": name,
                    "ws_url": node.browser_ws_url,
                    **self._signer.tokens(node, rooms, holder),
                    # Where the site publishes simulcast, subscribe with
                    # VideoRoom "substream": 0 (the thumbnail layer).
                    "substream": 0,
                    "subscribe": [
                        {"site": c, "room": room_id("uplink", c), "feed_id": feed_id("site", c)}
                        for c in codes
                    ],
                }
            )
        return out
