"""The timeline: one ordered record of everything that happened in a meeting.

Built on request from what the meeting's own records already hold (start and
end, floor grants and revocations, raised hands, mute decisions, conclusions
and each acknowledgement, attendance changes, directives issued while it ran,
inspections) plus the recording's files, so it can never disagree with them.
Each event carries the offset of that moment in the program recording, when
there is one, for a player to jump to, and the clip of a floor grant.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from diemcau.actors import Actor
from diemcau.directory.sites import SiteDirectory, SiteInfo
from diemcau.recording.auditing import AuditFact
from diemcau.recording.files import FileView
from diemcau.recording.ports import (
    ConclusionRecord,
    DirectiveRecord,
    FloorRecord,
    HandRecord,
    IntervalRecord,
    MeetingRecord,
)
from diemcau.records import JsonObject, Record

__all__ = ["KINDS", "MeetingFacts", "Timeline", "TimelineEvent", "build_timeline", "program_offset"]

KINDS = (
    "meeting.start",
    "meeting.end",
    "floor.grant",
    "floor.revoke",
    "hand.raise",
    "hand.close",
    "floor.mute_all",
    "floor.allow_unmute",
    "conclusion.publish",
    "conclusion.ack",
    "directive.issue",
    "attendance.join",
    "attendance.leave",
    "inspection",
)
# Audit actions shown as they are (mute decisions, inspections by other packages).
AUDITED = ("floor.mute_all", "floor.allow_unmute", "media.spot_check", "inspection.start")
INSPECTIONS = ("media.spot_check", "inspection.start")


@dataclass(frozen=True)
class TimelineEvent(Record):
    """One moment of a meeting."""

    at: datetime
    kind: str
    site: SiteInfo | None = None
    actor: str = ""
    text: str = ""
    details: JsonObject = field(default_factory=dict)
    file_id: int | None = None
    offset_s: float | None = None

    @property
    def province_id(self) -> int | None:
        return self.site.province_id if self.site is not None else None

    def as_dict(self) -> JsonObject:
        return {
            "at": self.at.isoformat(),
            "kind": self.kind,
            "site_code": self.site.code if self.site else None,
            "site_name": self.site.name if self.site else None,
            "province_name": self.site.province_name if self.site else None,
            "actor": self.actor,
            "text": self.text,
            "details": self.details,
            "file_id": self.file_id,
            "offset_s": self.offset_s,
        }


@dataclass(frozen=True)
class MeetingFacts:
    """Everything a timeline (and the minutes) are made of."""

    meeting: MeetingRecord
    participants: Sequence[int]
    attendance: Sequence[IntervalRecord]
    floor: Sequence[FloorRecord]
    hands: Sequence[HandRecord]
    conclusions: Sequence[ConclusionRecord]
    directives: Sequence[DirectiveRecord]
    audit: Sequence[AuditFact]
    files: Sequence[FileView]


@dataclass(frozen=True)
class Timeline(Record):
    """A meeting's events as one viewer may see them, with the counts per kind."""

    meeting_id: int
    total: int
    counts: dict[str, int]
    events: list[TimelineEvent]
    program_file_id: int | None


def program_offset(program: FileView | None, at: datetime) -> float | None:
    """Where moment ``at`` is in the program file: within a recorded stretch, or the
    start of the next stretch when ``at`` fell in a pause; None after the end."""
    if program is None or not program.timing:
        return None
    starts = [datetime.fromisoformat(str(t[0])) for t in program.timing]
    i = bisect.bisect_right(starts, at) - 1
    if i < 0:
        return float(program.timing[0][1])
    begin, offset, length = starts[i], float(program.timing[i][1]), float(program.timing[i][2])
    into = (at - begin).total_seconds()
    if into <= length:
        return round(offset + into, 3)
    if i + 1 < len(program.timing):
        return float(program.timing[i + 1][1])
    return None


def _meeting_events(facts: MeetingFacts, sites: dict[int, SiteInfo]) -> list[TimelineEvent]:
    """Start, end, floor grants and revocations (with their clips), raised hands."""
    m = facts.meeting
    out: list[TimelineEvent] = []
    if m.started_at is not None:
        out.append(TimelineEvent(m.started_at, "meeting.start", actor=m.chair_name, text=m.title))
    if m.ended_at is not None:
        out.append(TimelineEvent(m.ended_at, "meeting.end", text=m.title))
    clips = {f.floor_id: f.id for f in facts.files if f.kind == "clip" and f.floor_id}
    for g in facts.floor:
        site = sites.get(g.site_id)
        out.append(
            TimelineEvent(
                g.granted_at,
                "floor.grant",
                site,
                g.granted_by,
                details={
                    "floor_id": g.id,
                    "until": g.revoked_at.isoformat() if g.revoked_at else None,
                },
                file_id=clips.get(g.id),
            )
        )
        if g.revoked_at is not None:
            out.append(
                TimelineEvent(
                    g.revoked_at,
                    "floor.revoke",
                    site,
                    details={
                        "floor_id": g.id,
                        "seconds": round((g.revoked_at - g.granted_at).total_seconds(), 1),
                    },
                    file_id=clips.get(g.id),
                )
            )
    for h in facts.hands:
        site = sites.get(h.site_id)
        out.append(TimelineEvent(h.raised_at, "hand.raise", site))
        if h.closed_at is not None:
            out.append(
                TimelineEvent(h.closed_at, "hand.close", site, details={"outcome": h.outcome})
            )
    return out


def _message_events(facts: MeetingFacts) -> list[TimelineEvent]:
    """Conclusions with each acknowledgement, and the directives issued meanwhile."""
    out: list[TimelineEvent] = []
    invited = len(facts.participants)
    for c in facts.conclusions:
        out.append(
            TimelineEvent(
                c.published_at,
                "conclusion.publish",
                text=c.body,
                details={"conclusion_id": c.id, "acked": len(c.acks), "invited": invited},
            )
        )
        for a in c.acks:
            out.append(
                TimelineEvent(
                    a.acked_at,
                    "conclusion.ack",
                    None,
                    details={"conclusion_id": c.id, "site_id": a.site_id},
                )
            )
    for d in facts.directives:
        out.append(
            TimelineEvent(
                d.issued_at,
                "directive.issue",
                actor=d.issued_by,
                text=d.title,
                details={
                    "directive_id": d.id,
                    "priority": d.priority,
                    "recipients": d.recipients,
                    "acknowledged": d.acknowledged,
                },
            )
        )
    return out


def _presence_events(facts: MeetingFacts, sites: dict[int, SiteInfo]) -> list[TimelineEvent]:
    """Attendance changes, audited decisions (mute, inspections), recorded inspections."""
    out: list[TimelineEvent] = []
    for iv in facts.attendance:
        site = sites.get(iv.site_id)
        out.append(TimelineEvent(iv.joined_at, "attendance.join", site))
        if iv.left_at is not None:
            out.append(
                TimelineEvent(
                    iv.left_at, "attendance.leave", site, details={"reason": iv.left_reason}
                )
            )
    by_code = {s.code: s for s in sites.values()}
    recorded = sorted(
        (f for f in facts.files if f.kind == "inspection" and f.started_at is not None),
        key=lambda f: f.started_at or datetime.min,
    )
    for rec in facts.audit:
        kind = "inspection" if rec.action in INSPECTIONS else rec.action
        site = by_code.get(rec.target or "")
        file_id = None
        if kind == "inspection":
            # The recording of this spot-check starts once its feed reaches central.
            file_id = next(
                (
                    f.id
                    for f in recorded
                    if f.site_code == rec.target
                    and f.started_at is not None
                    and f.started_at >= rec.at - timedelta(seconds=2)
                ),
                None,
            )
        out.append(
            TimelineEvent(
                rec.at, kind, site, rec.actor_name, details=dict(rec.details or {}), file_id=file_id
            )
        )
    return out


def _order(e: TimelineEvent) -> tuple[datetime, int]:
    """Time order; at one instant the start comes first, the end last, the rest by kind."""
    rank = KINDS.index(e.kind) if e.kind in KINDS else len(KINDS)
    return (e.at, len(KINDS) + 1 if e.kind == "meeting.end" else rank)


def _with_sites(events: list[TimelineEvent], sites: dict[int, SiteInfo]) -> list[TimelineEvent]:
    """Acknowledgements name their site by id in ``details``; attach the site."""
    out = []
    for e in events:
        sid = e.details.get("site_id")
        if isinstance(sid, int):
            details = {k: v for k, v in e.details.items() if k != "site_id"}
            e = replace(e, site=sites.get(sid), details=details)
        out.append(e)
    return out


async def build_timeline(
    facts: MeetingFacts,
    directory: SiteDirectory,
    viewer: Actor,
    *,
    kinds: Collection[str] | None = None,
    limit: int = 1000,
    offset: int = 0,
) -> Timeline:
    """The meeting's events in time order, as ``viewer`` may see them.

    A province officer sees events of its own province's sites and the meeting's
    own events (start, end, mute decisions, conclusions), never another province's
    sites nor the directives (which may reach other provinces only).
    """
    ids = {iv.site_id for iv in facts.attendance} | {g.site_id for g in facts.floor}
    ids |= {h.site_id for h in facts.hands} | {a.site_id for c in facts.conclusions for a in c.acks}
    ids |= {f.site_id for f in facts.files if f.site_id is not None}
    sites = await directory.by_ids(ids)
    for code_site in (
        await directory.by_codes({a.target for a in facts.audit if a.target})
    ).values():
        sites[code_site.id] = code_site
    events = [
        *_meeting_events(facts, sites),
        *_with_sites(_message_events(facts), sites),
        *_presence_events(facts, sites),
    ]
    if viewer.scoped:
        events = [
            e
            for e in events
            if e.kind != "directive.issue"
            and (e.site is None or e.province_id == viewer.province_id)
        ]
    program = next((f for f in facts.files if f.kind == "program"), None)
    events.sort(key=_order)
    counts = dict(Counter(e.kind for e in events))
    if kinds is not None:
        events = [e for e in events if e.kind in kinds]
    total = len(events)
    page = events[max(0, offset) : max(0, offset) + max(1, limit)]
    page = [replace(e, offset_s=program_offset(program, e.at)) for e in page]
    return Timeline(facts.meeting.id, total, counts, page, program.id if program else None)
