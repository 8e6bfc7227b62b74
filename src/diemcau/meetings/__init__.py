"""Meetings: lifecycle, invitations by area, floor control, roll call, conclusions, audit.

The public surface is re-exported here; `record_audit` is the audit entry point every
package uses for chair and operator actions.
"""

from diemcau.meetings.attendance import AttendanceCounts, AttendanceSummary, SiteAttendance
from diemcau.meetings.audit import AuditQuery, AuditRecord, audit_csv, query_audit, record_audit
from diemcau.meetings.conclusions import Attachment, ConclusionStatus, ConclusionView
from diemcau.meetings.floor import FloorState, QueueEntry
from diemcau.meetings.invites import InviteSpec, resolve_sites, spec_from_codes
from diemcau.meetings.ports import FloorDecision, FloorListener, SpeakerView
from diemcau.meetings.service import MeetingService, MeetingView, SiteInfo

__all__ = [
    "Attachment",
    "AttendanceCounts",
    "AttendanceSummary",
    "AuditQuery",
    "AuditRecord",
    "ConclusionStatus",
    "ConclusionView",
    "FloorDecision",
    "FloorListener",
    "FloorState",
    "InviteSpec",
    "MeetingService",
    "MeetingView",
    "QueueEntry",
    "SiteAttendance",
    "SiteInfo",
    "SpeakerView",
    "audit_csv",
    "query_audit",
    "record_audit",
    "resolve_sites",
    "spec_from_codes",
]
