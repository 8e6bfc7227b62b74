"""A meeting as callers see it: the typed record every meetings peer returns.

Peers hand out `MeetingView` s rather than ORM rows, so nothing outside a unit of work
holds a live row, and the two shapes of it (staff and sites) are written in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from diemcau.meetings.invites import InviteSpec
from diemcau.meetings.models import Meeting
from diemcau.records import JsonObject, Record, iso

__all__ = ["MeetingView"]


@dataclass(frozen=True)
class MeetingView(Record):
    """A meeting as callers see it (staff replies are its fields, see `Record`)."""

    id: int
    title: str
    agenda: str
    state: str
    chair_user_id: int
    delegates: tuple[int, ...]
    scheduled_start: datetime | None
    scheduled_end: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    ends_at: datetime | None
    reminder_lead_s: int
    late_after_s: int
    invite: InviteSpec
    invited_count: int
    muted_all: bool
    unmute_allowed: bool
    floor_version: int

    @classmethod
    def of(cls, m: Meeting) -> MeetingView:
        return cls(
            id=m.id,
            title=m.title,
            agenda=m.agenda,
            state=m.state,
            chair_user_id=m.chair_user_id,
            delegates=tuple(m.delegates or ()),
            scheduled_start=m.scheduled_start,
            scheduled_end=m.scheduled_end,
            started_at=m.started_at,
            ended_at=m.ended_at,
            ends_at=m.ends_at,
            reminder_lead_s=m.reminder_lead_s,
            late_after_s=m.late_after_s,
            invite=InviteSpec.from_json(m.invite_spec),
            invited_count=m.invited_count,
            muted_all=m.muted_all,
            unmute_allowed=m.unmute_allowed,
            floor_version=m.floor_version,
        )

    def site_dict(self) -> JsonObject:
        """What a site is told about the meeting (no invitation rule, no staff ids)."""
        return {
            "id": self.id,
            "title": self.title,
            "agenda": self.agenda,
            "state": self.state,
            "scheduled_start": iso(self.scheduled_start),
            "started_at": iso(self.started_at),
            "ends_at": iso(self.ends_at),
            "ended_at": iso(self.ended_at),
        }
