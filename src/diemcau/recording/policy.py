"""A meeting's recording policy (what is recorded, for how long) and its processing state.

The policy is the chair's: the program is recorded unless switched off, a
spot-check or inspection only when switched on. Each change is audited in the
same transaction that stores it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from diemcau.actors import Actor
from diemcau.errors import Invalid
from diemcau.recording.auditing import audit
from diemcau.recording.models import MeetingRecording
from diemcau.records import Record
from diemcau.store import Database

__all__ = ["MAX_RETENTION_DAYS", "Policy", "PolicyChange", "Policies"]

MAX_RETENTION_DAYS = 36500
STATES = ("idle", "recording", "processing", "done", "failed")


@dataclass(frozen=True)
class Policy(Record):
    """What is recorded for a meeting, and where its processing stands."""

    meeting_id: int
    record_program: bool = True
    record_inspections: bool = False
    retention_days: int | None = None
    state: str = "idle"
    error: str = ""
    processed_at: datetime | None = None


@dataclass(frozen=True)
class PolicyChange:
    """Fields to change; None leaves a field as it is (``clear_retention`` resets it)."""

    record_program: bool | None = None
    record_inspections: bool | None = None
    retention_days: int | None = None
    clear_retention: bool = False

    def check(self) -> None:
        if self.retention_days is not None and not 1 <= self.retention_days <= MAX_RETENTION_DAYS:
            raise Invalid(f"retention_days must be between 1 and {MAX_RETENTION_DAYS}")


def _policy(row: MeetingRecording | None, meeting_id: int) -> Policy:
    if row is None:
        return Policy(meeting_id)
    return Policy(
        row.meeting_id,
        row.record_program,
        row.record_inspections,
        row.retention_days,
        row.state,
        row.error,
        row.processed_at,
    )


class Policies:
    """Reads and writes of the ``recording_meetings`` rows."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, meeting_id: int) -> Policy:
        async with self.db.session() as s:
            return _policy(await s.get(MeetingRecording, meeting_id), meeting_id)

    async def change(
        self, actor: Actor, meeting_id: int, change: PolicyChange, now: datetime
    ) -> tuple[Policy, Policy]:
        """Apply ``change`` and audit it; returns (before, after)."""
        change.check()
        async with self.db.session() as s:
            row = await s.get(MeetingRecording, meeting_id)
            before = _policy(row, meeting_id)
            if row is None:
                row = MeetingRecording(
                    meeting_id=meeting_id,
                    record_program=True,
                    record_inspections=False,
                    state="idle",
                    error="",
                )
                s.add(row)
            if change.record_program is not None:
                row.record_program = change.record_program
            if change.record_inspections is not None:
                row.record_inspections = change.record_inspections
            if change.clear_retention:
                row.retention_days = None
            elif change.retention_days is not None:
                row.retention_days = change.retention_days
            row.updated_by = actor.label[:200]
            row.updated_at = now
            after = _policy(row, meeting_id)
            await audit(
                s,
                actor,
                "recording.policy",
                meeting_id,
                details={
                    "before": {k: v for k, v in before.as_dict().items() if k != "error"},
                    "after": {k: v for k, v in after.as_dict().items() if k != "error"},
                },
                at=now,
            )
        return before, after

    async def set_state(
        self, meeting_id: int, state: str, *, error: str = "", at: datetime | None = None
    ) -> None:
        """Move a meeting's recording to ``state`` (creating its row with the defaults)."""
        if state not in STATES:
            raise ValueError(f"unknown recording state {state!r}")
        async with self.db.session() as s:
            row = await s.get(MeetingRecording, meeting_id)
            if row is None:
                row = MeetingRecording(
                    meeting_id=meeting_id, record_program=True, record_inspections=False
                )
                s.add(row)
            row.state = state
            row.error = error[:4000]
            if state in ("done", "failed"):
                row.processed_at = at

    async def in_states(self, states: Collection[str]) -> list[int]:
        async with self.db.session() as s:
            rows = await s.scalars(
                select(MeetingRecording.meeting_id)
                .where(MeetingRecording.state.in_(list(states)))
                .order_by(MeetingRecording.meeting_id)
            )
            return list(rows.all())
