"""A meeting's program as the media plane holds it (rooms, chair feed, floor, inspected site).

Room layout (same ids on every node, derived from names so a restarted
control plane finds its rooms again):

- program room of a meeting, on central and on every relay: remote
  publishers only (created with an empty ``allowed`` list, so no browser
  can publish into it). It holds the chair and the floor speakers; sites
  subscribe to it on their relay, the chair console on central.
- chair room of a meeting, on central: the chair console publishes there;
  that feed is remotized to central's and every relay's program room.
- inspect room of a meeting, on central, only while a spot-check of that
  meeting is recorded (its recording policy says so): the inspected site's
  feed as a remote publisher, so the central node can record it
  (docs/recording.md); nobody subscribes to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypedDict

from diemcau.media.ids import feed_id, room_id

__all__ = ["Program", "ProgramFeed"]


class ProgramFeed(TypedDict):
    """A feed of the program as grants name it: the chair's, or a floor speaker's."""

    feed_id: int
    role: str  # chair | floor
    site: str | None


@dataclass
class Program:
    """One running program: its rooms' ids, the chair's feed, who holds the floor."""

    meeting_id: str
    room: int
    chair_room: int
    chair_feed: int
    floor: list[str] = field(default_factory=list)
    # The site whose spot-check is being recorded at central, if any.
    inspect: str | None = None
    # The chair room's publish-token generation (`rights.Holder.chair`): raised each
    # time the live meeting loses a delegate (`chair_guard`).
    chair_generation: int = 0

    @property
    def inspect_room(self) -> int:
        return room_id("inspect", self.meeting_id)

    @classmethod
    def new(cls, meeting_id: str, floor: list[str] | None = None) -> Program:
        return cls(
            meeting_id,
            room_id("program", meeting_id),
            room_id("chair", meeting_id),
            feed_id("chair", meeting_id),
            list(floor or []),
        )

    def feeds(self) -> list[ProgramFeed]:
        """The feeds of the program: the chair, then the floor speakers."""
        feeds = [ProgramFeed(feed_id=self.chair_feed, role="chair", site=None)]
        for site in self.floor:
            feeds.append(ProgramFeed(feed_id=feed_id("site", site), role="floor", site=site))
        return feeds
