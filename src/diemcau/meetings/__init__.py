"""Meetings: lifecycle, invitations by area, floor control, roll call, conclusions.

The public surface is re-exported here. `MeetingService` builds the peers
(docs/meetings.md, "Service API"); what they decide is written to the shared audit
log (`diemcau.audit`).
"""

from diemcau.meetings.conclusions import Attachment, ConclusionStatus, ConclusionView
from diemcau.meetings.floor import MAX_SPEAKERS, FloorState
from diemcau.meetings.hands import QueueEntry
from diemcau.meetings.invites import Invitations, InviteSpec
from diemcau.meetings.ports import FloorDecision, FloorListener, MediaPort, SpeakerView
from diemcau.meetings.roll_call import AttendanceCounts, AttendanceSummary, SiteAttendance
from diemcau.meetings.service import MeetingService
from diemcau.meetings.views import MeetingView

__all__ = [
    "MAX_SPEAKERS",
    "Attachment",
    "AttendanceCounts",
    "AttendanceSummary",
    "ConclusionStatus",
    "ConclusionView",
    "FloorDecision",
    "FloorListener",
    "FloorState",
    "Invitations",
    "InviteSpec",
    "MediaPort",
    "MeetingService",
    "MeetingView",
    "QueueEntry",
    "SiteAttendance",
    "SpeakerView",
]
