"""The content of a meeting's minutes (biên bản), computed from the meeting's own records.

Everything factual (who was invited, present, late or absent per province; who
spoke when; each conclusion and how many sites acknowledged it; the directives
issued during the meeting) is computed here and never typed by hand; the chair
or secretary writes only the text parts (`TEXT_FIELDS`). Published minutes keep
the facts as they were at publication (`MinutesContent.as_json`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from pydantic import TypeAdapter

from diemcau.directory.sites import SiteInfo
from diemcau.recording.timeline import MeetingFacts
from diemcau.records import JsonObject

__all__ = [
    "TEXT_FIELDS",
    "ConclusionLine",
    "DirectiveLine",
    "InterventionLine",
    "MinutesContent",
    "ProvinceLine",
    "minutes_content",
]

# The parts the chair or secretary writes: summary of the discussion, the chair's
# closing conclusions in prose, and any other note (max 20,000 characters each).
TEXT_FIELDS = ("summary", "conclusion_notes", "closing")
MAX_TEXT = 20000


@dataclass(frozen=True)
class ProvinceLine:
    province: str
    invited: int
    present: int
    late: int
    absent: int


@dataclass(frozen=True)
class InterventionLine:
    site_code: str
    site_name: str
    province: str
    started_at: str
    ended_at: str | None
    seconds: float | None


@dataclass(frozen=True)
class ConclusionLine:
    id: int
    body: str
    published_at: str
    acked: int
    invited: int

    @property
    def rate(self) -> float:
        return self.acked / self.invited if self.invited else 0.0


@dataclass(frozen=True)
class DirectiveLine:
    id: int
    title: str
    priority: str
    issued_by: str
    issued_at: str
    recipients: int
    acknowledged: int


@dataclass(frozen=True)
class MinutesContent:
    """The facts of the minutes plus the written text parts."""

    meeting_id: int
    title: str
    agenda: str
    chair: str
    started_at: str | None
    ended_at: str | None
    provinces: tuple[ProvinceLine, ...]
    interventions: tuple[InterventionLine, ...]
    conclusions: tuple[ConclusionLine, ...]
    directives: tuple[DirectiveLine, ...]
    texts: dict[str, str]

    @property
    def totals(self) -> ProvinceLine:
        return ProvinceLine(
            "Tổng cộng",
            sum(p.invited for p in self.provinces),
            sum(p.present for p in self.provinces),
            sum(p.late for p in self.provinces),
            sum(p.absent for p in self.provinces),
        )

    def as_json(self) -> JsonObject:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> MinutesContent:
        """The content as `as_json` stored it (a published snapshot), checked field by field."""
        return _SNAPSHOT.validate_python(data)


_SNAPSHOT = TypeAdapter(MinutesContent)


def _local(value: datetime | None, utc_offset_min: int) -> str | None:
    if value is None:
        return None
    return (value + timedelta(minutes=utc_offset_min)).strftime("%d/%m/%Y %H:%M:%S")


def _attendance(facts: MeetingFacts, sites: dict[int, SiteInfo]) -> tuple[ProvinceLine, ...]:
    first_join: dict[int, datetime] = {}
    for iv in facts.attendance:
        if iv.site_id not in first_join or iv.joined_at < first_join[iv.site_id]:
            first_join[iv.site_id] = iv.joined_at
    start = facts.meeting.started_at
    late_after = timedelta(seconds=facts.meeting.late_after_s)
    rows: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for sid in facts.participants:
        info = sites.get(sid)
        row = rows[info.province_name if info and info.province_name else "—"]
        row[0] += 1
        joined = first_join.get(sid)
        if joined is None:
            row[3] += 1
            continue
        row[1] += 1
        if start is not None and joined - start > late_after:
            row[2] += 1
    return tuple(ProvinceLine(name, *counts) for name, counts in sorted(rows.items()))


def minutes_content(
    facts: MeetingFacts,
    sites: dict[int, SiteInfo],
    texts: dict[str, str],
    *,
    utc_offset_min: int = 420,
) -> MinutesContent:
    """The minutes of ``facts`` with ``texts``; times in UTC+07:00 unless told otherwise."""
    m = facts.meeting
    interventions = []
    for g in facts.floor:
        info = sites.get(g.site_id)
        interventions.append(
            InterventionLine(
                info.code if info else str(g.site_id),
                info.name if info else "",
                info.province_name if info else "",
                _local(g.granted_at, utc_offset_min) or "",
                _local(g.revoked_at, utc_offset_min),
                round((g.revoked_at - g.granted_at).total_seconds(), 1) if g.revoked_at else None,
            )
        )
    invited = len(facts.participants)
    conclusions = tuple(
        ConclusionLine(
            c.id, c.body, _local(c.published_at, utc_offset_min) or "", len(c.acks), invited
        )
        for c in facts.conclusions
    )
    directives = tuple(
        DirectiveLine(
            d.id,
            d.title,
            d.priority,
            d.issued_by,
            _local(d.issued_at, utc_offset_min) or "",
            d.recipients,
            d.acknowledged,
        )
        for d in facts.directives
    )
    return MinutesContent(
        meeting_id=m.id,
        title=m.title,
        agenda=m.agenda,
        chair=m.chair_name,
        started_at=_local(m.started_at, utc_offset_min),
        ended_at=_local(m.ended_at, utc_offset_min),
        provinces=_attendance(facts, sites),
        interventions=tuple(interventions),
        conclusions=conclusions,
        directives=directives,
        texts={k: texts.get(k, "") for k in TEXT_FIELDS},
    )
