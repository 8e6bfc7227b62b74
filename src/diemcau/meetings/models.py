"""Meeting tables: meetings, participants, attendance intervals, floor, conclusions, groups, audit.

Everything a chair decides or a site does in a meeting is a row here, so the meeting's
state (who is present, who holds the floor, who acknowledged a conclusion) is rebuilt
from the store after a restart (docs/meetings.md, "Restarts").
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from diemcau.audit.models import AuditEntry
from diemcau.records import JsonObject
from diemcau.store.models import Base, utcnow
from diemcau.store.types import UTCDateTime

__all__ = [
    "AuditEntry",
    "Meeting",
    "MeetingAttendance",
    "MeetingConclusion",
    "MeetingConclusionAck",
    "MeetingFloor",
    "MeetingHand",
    "MeetingLiveSite",
    "MeetingParticipant",
    "SiteGroup",
    "UTCDateTime",
    "MEETING_STATES",
]

MEETING_STATES = ("scheduled", "live", "ended")


class Meeting(Base):
    """A meeting: title, agenda, schedule, chair, invitation rule and live floor flags."""

    __tablename__ = "meetings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    agenda: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(16), index=True, default="scheduled")
    chair_user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"), index=True)
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    # Staff user ids who may run the floor besides the chair.
    delegates: Mapped[list[int]] = mapped_column(JSON, default=list)
    scheduled_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    scheduled_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Planned end while live (moved by "extend"); informational, never auto-ends.
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminder_lead_s: Mapped[int] = mapped_column(Integer, default=900)
    reminder_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    late_after_s: Mapped[int] = mapped_column(Integer, default=300)
    # The invitation rule (area and filters, see meetings.invites.InviteSpec), as ids.
    invite_spec: Mapped[JsonObject] = mapped_column(JSON, default=dict)
    invited_count: Mapped[int] = mapped_column(Integer, default=0)
    muted_all: Mapped[bool] = mapped_column(Boolean, default=False)
    unmute_allowed: Mapped[bool] = mapped_column(Boolean, default=True)
    floor_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MeetingParticipant(Base):
    """An invited site of a meeting, fixed when the meeting starts."""

    __tablename__ = "meeting_participants"
    __table_args__ = (UniqueConstraint("meeting_id", "site_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    province_id: Mapped[int | None] = mapped_column(Integer)
    # True between the site's "join" and its explicit "leave": a site that drops
    # offline while this is set is rejoined automatically when it comes back.
    wants_in: Mapped[bool] = mapped_column(Boolean, default=False)
    first_joined_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MeetingLiveSite(Base):
    """Which live meeting holds a site: the primary key makes "one live meeting per site" a
    database guarantee, not only a check."""

    __tablename__ = "meeting_live_sites"

    site_id: Mapped[int] = mapped_column(
        ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True
    )
    meeting_id: Mapped[int] = mapped_column(
        ForeignKey("meetings.id", ondelete="CASCADE"), index=True
    )


class MeetingAttendance(Base):
    """One presence interval of a site in a meeting: [joined_at, left_at)."""

    __tablename__ = "meeting_attendance"
    __table_args__ = (Index("ix_meeting_attendance_meeting_id_site_id", "meeting_id", "site_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime)
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # leave | offline | ended | server_restart | uninvited
    left_reason: Mapped[str | None] = mapped_column(String(32))


class MeetingHand(Base):
    """A raised hand; open while ``closed_at`` is null. The queue is open hands by time."""

    __tablename__ = "meeting_hands"
    __table_args__ = (
        Index("ix_meeting_hands_meeting_id_closed_at", "meeting_id", "closed_at"),
        Index(
            "ix_meeting_hands_open",
            "meeting_id",
            "site_id",
            unique=True,
            sqlite_where=text("closed_at IS NULL"),
            postgresql_where=text("closed_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # lowered | granted | dismissed | ended | left
    outcome: Mapped[str | None] = mapped_column(String(16))


class MeetingFloor(Base):
    """A floor grant; current while ``revoked_at`` is null (one site, or two for a dialogue)."""

    __tablename__ = "meeting_floor"
    __table_args__ = (Index("ix_meeting_floor_meeting_id_revoked_at", "meeting_id", "revoked_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    granted_by: Mapped[str] = mapped_column(String(200), default="")


class MeetingConclusion(Base):
    """A conclusion the chair published to every participant, with attachment metadata."""

    __tablename__ = "meeting_conclusions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(
        ForeignKey("meetings.id", ondelete="CASCADE"), index=True
    )
    body: Mapped[str] = mapped_column(Text)
    attachments: Mapped[list[JsonObject]] = mapped_column(JSON, default=list)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)
    published_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))


class MeetingConclusionAck(Base):
    """A site's acknowledgement of having read a conclusion (once per site)."""

    __tablename__ = "meeting_conclusion_acks"

    conclusion_id: Mapped[int] = mapped_column(
        ForeignKey("meeting_conclusions.id", ondelete="CASCADE"), primary_key=True
    )
    site_id: Mapped[int] = mapped_column(
        ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True
    )
    acked_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SiteGroup(Base):
    """A saved, named invitation rule ("19 southern provinces", "flood-hit communes")."""

    __tablename__ = "site_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    spec: Mapped[JsonObject] = mapped_column(JSON, default=dict)
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
