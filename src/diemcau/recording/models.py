"""Recording tables: per-meeting policy, recorded segments, finished files, minutes.

Every row here is what survives a restart of the control server: the policy the
chair chose, the segments Janus wrote (so post-processing resumes where it
stopped), each finished file with its SHA-256, and the minutes with their draft
text. ``meeting_id`` carries no foreign key on purpose, like the audit log: a
recording and its minutes outlive what they describe, and this package does not
depend on the meetings tables (docs/recording.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict

from sqlalchemy import JSON, Boolean, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from diemcau.records import JsonObject
from diemcau.store.models import Base, utcnow
from diemcau.store.types import UTCDateTime

__all__ = [
    "FILE_KINDS",
    "FeedRole",
    "Timing",
    "MeetingRecording",
    "MinutesRow",
    "RecordingFile",
    "RecordingSegment",
]

# One recorded stretch of a program file: [wall-clock start ISO, offset in the file (s),
# duration (s)].
Timing = list[str | float]


class FeedRole(TypedDict):
    """Whose a feed of a segment is (a JSON object in the segment's row)."""

    feed_id: int
    role: str  # chair | floor | inspection
    site_code: str | None


# program: the whole meeting as sites saw it; clip: one floor intervention;
# inspection: a spot-check recorded by policy; minutes_html / minutes_pdf: the minutes.
FILE_KINDS = ("program", "clip", "inspection", "minutes_html", "minutes_pdf")


class MeetingRecording(Base):
    """One meeting's recording: the policy the chair chose and where processing stands.

    A meeting without a row uses the defaults (program recorded, inspections not).
    ``state``: idle (nothing recorded yet) | recording | processing | done | failed.
    """

    __tablename__ = "recording_meetings"

    meeting_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    record_program: Mapped[bool] = mapped_column(Boolean, default=True)
    record_inspections: Mapped[bool] = mapped_column(Boolean, default=False)
    # Days the files are kept after the meeting ends (None: the server's default).
    retention_days: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="idle", index=True)
    error: Mapped[str] = mapped_column(Text, default="")
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RecordingSegment(Base):
    """One stretch of Janus recording of a meeting's program room, with a constant set of feeds.

    Janus 1.1.2 records a remote publisher only if it is in the room when recording
    is switched on, so a new segment starts whenever the feeds change (docs/recording.md).
    """

    __tablename__ = "recording_segments"
    __table_args__ = (Index("ix_recording_segments_meeting_id_seq", "meeting_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    # inspection segments carry the inspected site's code
    kind: Mapped[str] = mapped_column(String(16), default="program")
    # Relative to the recordings root.
    folder: Mapped[str] = mapped_column(String(300))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    feeds: Mapped[list[FeedRole]] = mapped_column(JSON, default=list)


class RecordingFile(Base):
    """A finished file (recording or minutes) with its digest, kept until retention ends."""

    __tablename__ = "recording_files"
    __table_args__ = (Index("ix_recording_files_meeting_id_kind", "meeting_id", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    # The speaker (clips) or inspected site; None for the program and the minutes.
    site_id: Mapped[int | None] = mapped_column(Integer)
    site_code: Mapped[str | None] = mapped_column(String(32))
    site_name: Mapped[str | None] = mapped_column(String(300))
    province_id: Mapped[int | None] = mapped_column(Integer, index=True)
    # The floor grant a clip is of (meetings' floor row id).
    floor_id: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Relative to the recordings root.
    path: Mapped[str] = mapped_column(String(400))
    # Program files: [[wall-clock start ISO, offset in the file (s), duration (s)], ...]
    # per recorded stretch, so a moment of the meeting maps to a moment of the file.
    timing: Mapped[list[Timing]] = mapped_column(JSON, default=list)
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer, default=0)
    sha256: Mapped[str] = mapped_column(String(64), default="")
    duration_s: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delete_after: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_by: Mapped[str | None] = mapped_column(String(200))


class MinutesRow(Base):
    """The minutes (biên bản) of a meeting: an editable draft, then published once."""

    __tablename__ = "recording_minutes"

    meeting_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    state: Mapped[str] = mapped_column(String(16), default="draft")  # draft | published
    # The text parts the chair or secretary edits: {"summary", "conclusions", "notes", ...}.
    texts: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)
    edited_by: Mapped[str] = mapped_column(String(200), default="")
    edited_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    published_by: Mapped[str | None] = mapped_column(String(200))
    # The conclusion that carried the minutes to the sites (its acks are the read receipts).
    conclusion_id: Mapped[int | None] = mapped_column(Integer)
    html_file_id: Mapped[int | None] = mapped_column(Integer)
    pdf_file_id: Mapped[int | None] = mapped_column(Integer)
    # The facts as frozen at publication (attendance, interventions ...), JSON.
    snapshot: Mapped[JsonObject | None] = mapped_column(JSON)
