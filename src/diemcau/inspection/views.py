"""Inspections, rounds and round items as callers see them (read-only values with JSON forms)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from diemcau.inspection.models import Inspection, InspectionRound, InspectionRoundItem
from diemcau.records import JsonObject, Record, iso

__all__ = ["InspectionView", "ItemView", "RoundView", "VERDICT_LABELS"]

# How the reports write a verdict (Vietnamese first).
VERDICT_LABELS = {
    "pass": "Đạt / Pass",
    "fail": "Chưa đạt / Fail",
    "no_answer": "Không trả lời / No answer",
}


@dataclass(frozen=True)
class InspectionView(Record):
    """One inspection: who looked at which site, when, how long, answered or not.

    Its reply adds the derived figures (answered, mode, answer and total seconds).
    """

    id: int
    site_id: int
    site_code: str
    site_name: str
    province_id: int | None
    province_name: str
    inspector: str
    inspector_name: str
    inspector_role: str
    round_id: int | None
    round_item_id: int | None
    meeting_id: int | None
    state: str
    reason: str
    requested_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    in_call: bool
    call_count: int
    call_seconds: float
    recorded: bool
    # When the view was taken: an open inspection's duration runs up to it.
    as_of: datetime | None = None

    @classmethod
    def of(cls, row: Inspection, now: datetime | None = None) -> InspectionView:
        """The row as a view; an open call's running time counts up to `now`."""
        call_s = row.call_seconds
        if row.call_started_at is not None and now is not None:
            call_s += max(0.0, (now - row.call_started_at).total_seconds())
        return cls(
            id=row.id,
            site_id=row.site_id,
            site_code=row.site_code,
            site_name=row.site_name,
            province_id=row.province_id,
            province_name=row.province_name,
            inspector=row.inspector,
            inspector_name=row.inspector_name or row.inspector,
            inspector_role=row.inspector_role,
            round_id=row.round_id,
            round_item_id=row.round_item_id,
            meeting_id=row.meeting_id,
            state=row.state,
            reason=row.reason,
            requested_at=row.requested_at,
            answered_at=row.answered_at,
            ended_at=row.ended_at,
            in_call=row.call_started_at is not None,
            call_count=row.call_count,
            call_seconds=round(call_s, 1),
            recorded=row.recorded,
            as_of=now,
        )

    @property
    def answered(self) -> bool:
        return self.answered_at is not None

    @property
    def mode(self) -> str:
        """``two_way`` once a call was made, else ``silent``."""
        return "two_way" if self.call_count else "silent"

    @property
    def open(self) -> bool:
        return self.state in ("waiting", "live")

    def duration_s(self, now: datetime | None = None) -> float:
        """From the request to the end (while open: to `now`, or to when the view was taken)."""
        end = self.ended_at or now or self.as_of or self.requested_at
        return round(max(0.0, (end - self.requested_at).total_seconds()), 1)

    def answer_s(self) -> float | None:
        if self.answered_at is None:
            return None
        return round(max(0.0, (self.answered_at - self.requested_at).total_seconds()), 2)

    def as_dict(self) -> JsonObject:
        return {
            "id": self.id,
            "site_id": self.site_id,
            "site_code": self.site_code,
            "site_name": self.site_name,
            "province_id": self.province_id,
            "province_name": self.province_name,
            "inspector": self.inspector,
            "inspector_name": self.inspector_name,
            "inspector_role": self.inspector_role,
            "round_id": self.round_id,
            "round_item_id": self.round_item_id,
            "meeting_id": self.meeting_id,
            "state": self.state,
            "reason": self.reason,
            "answered": self.answered,
            "mode": self.mode,
            "requested_at": iso(self.requested_at),
            "answered_at": iso(self.answered_at),
            "answer_s": self.answer_s(),
            "ended_at": iso(self.ended_at),
            "duration_s": self.duration_s(),
            "in_call": self.in_call,
            "call_count": self.call_count,
            "call_seconds": self.call_seconds,
            "recorded": self.recorded,
        }


@dataclass(frozen=True)
class ItemView(Record):
    """One site of a round, with its verdict and note."""

    id: int
    round_id: int
    position: int
    site_id: int
    site_code: str
    site_name: str
    province_id: int | None
    province_name: str
    verdict: str | None
    note: str
    decided_by: str | None
    decided_at: datetime | None
    inspection_id: int | None
    answered: bool | None
    has_snapshot: bool

    @classmethod
    def of(cls, row: InspectionRoundItem, has_snapshot: bool) -> ItemView:
        return cls(
            id=row.id,
            round_id=row.round_id,
            position=row.position,
            site_id=row.site_id,
            site_code=row.site_code,
            site_name=row.site_name,
            province_id=row.province_id,
            province_name=row.province_name,
            verdict=row.verdict,
            note=row.note,
            decided_by=row.decided_by,
            decided_at=row.decided_at,
            inspection_id=row.inspection_id,
            answered=row.answered,
            has_snapshot=has_snapshot,
        )


@dataclass(frozen=True)
class RoundView(Record):
    """A round with its items (in order) and its progress."""

    id: int
    title: str
    province_id: int | None
    selection: JsonObject
    created_by: str
    created_at: datetime
    closed_at: datetime | None
    items: tuple[ItemView, ...]

    @classmethod
    def of(cls, row: InspectionRound, items: tuple[ItemView, ...]) -> RoundView:
        return cls(
            id=row.id,
            title=row.title,
            province_id=row.province_id,
            selection=dict(row.selection or {}),
            created_by=row.created_by,
            created_at=row.created_at,
            closed_at=row.closed_at,
            items=items,
        )

    def counts(self) -> dict[str, int]:
        out = {"sites": len(self.items), "decided": 0, "pass": 0, "fail": 0, "no_answer": 0}
        for item in self.items:
            if item.verdict is not None:
                out["decided"] += 1
                out[item.verdict] += 1
        return out

    def as_dict(self, *, items: bool = True) -> JsonObject:
        out: JsonObject = {
            "id": self.id,
            "title": self.title,
            "province_id": self.province_id,
            "selection": self.selection,
            "created_by": self.created_by,
            "created_at": iso(self.created_at),
            "closed_at": iso(self.closed_at),
            "counts": self.counts(),
        }
        if items:
            out["items"] = [i.as_dict() for i in self.items]
        return out
