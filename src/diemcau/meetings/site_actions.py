"""What a site does in a meeting, over its session or over HTTP: join, leave, hands, acks.

A site's identity always comes from its credential: the hub hands the handlers the
session's principal, the API its token's; both become an `Actor` before any check, and
a request body naming another site is refused (docs/meetings.md, "Site actions").
The effects that span peers live here, so attendance, the hand queue and the floor
never call one another back: leaving closes the site's presence, its hand and its floor.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from diemcau.accounts.service import SitePrincipal
from diemcau.actors import Actor
from diemcau.errors import Invalid
from diemcau.meetings.access import own_request, site_actor
from diemcau.meetings.attendance import Attendance
from diemcau.meetings.conclusions import Conclusions
from diemcau.meetings.floor import FloorControl, FloorState
from diemcau.meetings.hands import HandQueue, QueueEntry
from diemcau.meetings.ports import Hub
from diemcau.meetings.store import MeetingStore
from diemcau.meetings.views import MeetingView
from diemcau.records import JsonObject

__all__ = ["CurrentMeeting", "SiteActions"]


@dataclass(frozen=True)
class CurrentMeeting:
    """The live meeting a site is in, as its terminal shows it."""

    meeting: MeetingView
    floor: FloorState
    present: bool
    conclusions: list[JsonObject]

    def as_dict(self) -> JsonObject:
        return {
            "meeting": self.meeting.site_dict(),
            "floor": self.floor.as_dict(),
            "present": self.present,
            "conclusions": self.conclusions,
        }


@dataclass(eq=False, repr=False)
class SiteActions:
    """Site requests on meetings.

    Args:
        store: the meetings' shared read side (which meeting a site addresses).
        attendance: the site's presence.
        hands: the raise-hand queue.
        floor: the floor (a speaker who leaves loses it).
        conclusions: conclusions and their acknowledgements.
    """

    store: MeetingStore
    attendance: Attendance
    hands: HandQueue
    floor: FloorControl
    conclusions: Conclusions

    def register(self, hub: Hub) -> None:
        """Route the sites' session requests to this object."""
        hub.on_message("meeting.join", self.handle_join)
        hub.on_message("meeting.leave", self.handle_leave)
        hub.on_message("hand.raise", self.handle_raise)
        hub.on_message("hand.lower", self.handle_lower)
        hub.on_message("conclusion.ack", self.handle_ack)

    # --- actions ----------------------------------------------------------------------

    async def join(self, site: Actor, meeting_id: int | None = None) -> MeetingView:
        """Enter a live meeting (idempotent); an uninvited site is refused."""
        return await self.attendance.join(site, meeting_id)

    async def leave(self, site: Actor, meeting_id: int | None = None) -> None:
        """Leave on purpose: presence closes, the hand drops, a speaker loses the floor."""
        view = await self.attendance.leave(site, meeting_id)
        assert site.site_id is not None  # attendance admits site actors only
        await self.hands.close_hand(view.id, site.site_id, "left")
        await self.floor.speaker_left(view.id, site.site_id)

    async def raise_hand(self, site: Actor, meeting_id: int | None = None) -> QueueEntry:
        return await self.hands.raise_hand(site, meeting_id)

    async def lower_hand(self, site: Actor, meeting_id: int | None = None) -> None:
        await self.hands.lower_hand(site, meeting_id)

    async def current(self, site: Actor) -> CurrentMeeting:
        """The live meeting holding the site: meeting, floor, presence and conclusions."""
        view = await self.store.site_meeting(site, None)
        assert site.site_id is not None  # site_meeting admits site actors only
        return CurrentMeeting(
            view,
            await self.floor.state(view.id),
            self.attendance.is_present(view.id, site.site_id),
            await self.conclusions.for_site(view.id, site.site_id),
        )

    # --- session requests (the hub hands in the session's principal) ------------------

    async def handle_join(self, principal: SitePrincipal, body: Mapping[str, object]) -> JsonObject:
        site = site_actor(principal)
        view = await self.join(site, own_request(site, body))
        conclusions = await self.conclusions.for_site(view.id, principal.site_id)
        return {
            "meeting": view.site_dict(),
            "floor": await self.floor.for_site(view.id),
            "conclusions": conclusions,
        }

    async def handle_leave(
        self, principal: SitePrincipal, body: Mapping[str, object]
    ) -> JsonObject:
        site = site_actor(principal)
        await self.leave(site, own_request(site, body))
        return {"left": True}

    async def handle_raise(
        self, principal: SitePrincipal, body: Mapping[str, object]
    ) -> JsonObject:
        site = site_actor(principal)
        entry = await self.raise_hand(site, own_request(site, body))
        return {
            "raised": True,
            "position": entry.position,
            "raised_at": entry.raised_at.isoformat(),
        }

    async def handle_lower(
        self, principal: SitePrincipal, body: Mapping[str, object]
    ) -> JsonObject:
        site = site_actor(principal)
        await self.lower_hand(site, own_request(site, body))
        return {"raised": False}

    async def handle_ack(self, principal: SitePrincipal, body: Mapping[str, object]) -> JsonObject:
        site = site_actor(principal)
        own_request(site, body)
        cid = body.get("conclusion_id")
        if isinstance(cid, bool) or not isinstance(cid, int):
            raise Invalid("conclusion_id must be an integer")
        at = await self.conclusions.ack(site, cid)
        return {"conclusion_id": cid, "acked_at": at.isoformat()}
