"""The inspections table and its audit records, written together in one transaction each.

Every inspection leaves two audit rows at least: ``inspection.start`` when asked, and a
closing row with the whole story — ``inspection.end`` (answered, or ended before the
site answered) or ``inspection.not_answered`` (the finding: no terminal open, or no
picture within the bound) — with who, which site, when, how long, silent or two-way and
answered or not; a call adds ``inspection.call.start`` and ``inspection.call.end``.
The row and its audit record commit together (docs/architecture.md, "Persist, audit,
then publish"); an inspection that was open when the server stopped is closed at the
next start with the reason ``server_restart``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from diemcau.actors import Actor
from diemcau.audit import record_audit
from diemcau.directory.sites import SiteInfo
from diemcau.errors import NotFound
from diemcau.inspection.models import (
    OPEN_STATES,
    Inspection,
    InspectionRoundItem,
    site_by_value,
)
from diemcau.inspection.views import InspectionView
from diemcau.records import JsonObject
from diemcau.store import Database

__all__ = ["InspectionFilter", "InspectionRecords", "Opening", "no_inspection"]

MAX_LIST = 1000


@dataclass(frozen=True)
class Opening:
    """What an inspection starts from."""

    site: SiteInfo
    inspector_name: str
    meeting_id: int | None
    round_id: int | None = None
    round_item_id: int | None = None


@dataclass(frozen=True)
class InspectionFilter:
    """Filters of the inspection list; all optional. `province_id` is the caller's scope."""

    province_id: int | None = None
    site_code: str | None = None
    inspector: str | None = None
    state: str | None = None
    round_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 200


class InspectionRecords:
    """Creates, moves and closes inspection rows, each change with its audit record."""

    def __init__(self, db: Database, clock: Callable[[], float]) -> None:
        self.db = db
        self.clock = clock

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    # --- writes -----------------------------------------------------------------------

    async def open(self, actor: Actor, opening: Opening, *, online: bool) -> InspectionView:
        """Record a new inspection; a site with no terminal open is not answered at once."""
        now = self.now()
        site = opening.site
        async with self.db.session() as s:
            row = Inspection(
                **site_by_value(site),
                inspector=actor.name,
                inspector_name=opening.inspector_name,
                inspector_role=actor.role,
                inspector_user_id=actor.user_id,
                round_id=opening.round_id,
                round_item_id=opening.round_item_id,
                meeting_id=opening.meeting_id,
                state="waiting",
                reason="",
                requested_at=now,
                call_count=0,
                call_seconds=0.0,
                recorded=False,
            )
            s.add(row)
            await s.flush()
            await record_audit(
                s,
                actor,
                "inspection.start",
                opening.meeting_id,
                site.code,
                {
                    "inspection_id": row.id,
                    "site_name": site.name,
                    "province": site.province_name,
                    "terminal_open": online,
                    "round_id": opening.round_id,
                },
                at=now,
            )
            if not online:
                await self._close(s, actor, row, "not_answered", "no_terminal", now)
            return InspectionView.of(row, now)

    async def answered(self, inspection_ids: Sequence[int]) -> list[InspectionView]:
        """Mark waiting inspections answered (the site publishes); others are left alone."""
        if not inspection_ids:
            return []
        now = self.now()
        async with self.db.session() as s:
            rows = (
                await s.scalars(
                    select(Inspection).where(
                        Inspection.id.in_(list(inspection_ids)), Inspection.state == "waiting"
                    )
                )
            ).all()
            for row in rows:
                row.state, row.answered_at = "live", now
                # A round's item says so at once: its report may be printed while the
                # team is still looking.
                if row.round_item_id is not None:
                    item = await s.get(InspectionRoundItem, row.round_item_id)
                    if item is not None:
                        item.inspection_id, item.answered = row.id, True
            return [InspectionView.of(r, now) for r in rows]

    async def set_recorded(self, inspection_id: int) -> None:
        async with self.db.session() as s:
            row = await s.get(Inspection, inspection_id)
            if row is not None:
                row.recorded = True

    async def call_started(self, actor: Actor, inspection_id: int) -> InspectionView:
        now = self.now()
        async with self.db.session() as s:
            row = await self._open_row(s, inspection_id)
            row.call_started_at = now
            row.call_count += 1
            await record_audit(
                s,
                actor,
                "inspection.call.start",
                row.meeting_id,
                row.site_code,
                {"inspection_id": row.id, "call": row.call_count},
                at=now,
            )
            return InspectionView.of(row, now)

    async def call_ended(self, actor: Actor, inspection_id: int, reason: str) -> InspectionView:
        now = self.now()
        async with self.db.session() as s:
            row = await self._open_row(s, inspection_id)
            await self._end_call(s, actor, row, reason, now)
            return InspectionView.of(row, now)

    async def close(
        self, actor: Actor, inspection_id: int, state: str, reason: str
    ) -> InspectionView | None:
        """Close an open inspection (``ended`` or ``not_answered``); None if already closed."""
        now = self.now()
        async with self.db.session() as s:
            row = await s.get(Inspection, inspection_id)
            if row is None or row.state not in OPEN_STATES:
                return None
            await self._close(s, actor, row, state, reason, now)
            return InspectionView.of(row, now)

    async def close_all_open(self, reason: str) -> list[InspectionView]:
        """Close every inspection left open (the server stopped or crashed meanwhile)."""
        now = self.now()
        system = Actor.system()
        async with self.db.session() as s:
            rows = (
                await s.scalars(select(Inspection).where(Inspection.state.in_(OPEN_STATES)))
            ).all()
            for row in rows:
                await self._close(s, system, row, "ended", reason, now)
            return [InspectionView.of(r, now) for r in rows]

    async def _end_call(
        self, s: AsyncSession, actor: Actor, row: Inspection, reason: str, now: datetime
    ) -> None:
        if row.call_started_at is None:
            return
        seconds = max(0.0, (now - row.call_started_at).total_seconds())
        row.call_seconds += seconds
        row.call_started_at = None
        await record_audit(
            s,
            actor,
            "inspection.call.end",
            row.meeting_id,
            row.site_code,
            {"inspection_id": row.id, "duration_s": round(seconds, 1), "reason": reason},
            at=now,
        )

    async def _close(
        self, s: AsyncSession, actor: Actor, row: Inspection, state: str, reason: str, now: datetime
    ) -> None:
        await self._end_call(s, actor, row, reason, now)
        row.state, row.reason, row.ended_at = state, reason, now
        view = InspectionView.of(row, now)
        action = "inspection.not_answered" if state == "not_answered" else "inspection.end"
        await record_audit(s, actor, action, row.meeting_id, row.site_code, _summary(view), at=now)
        if row.round_item_id is not None:
            item = await s.get(InspectionRoundItem, row.round_item_id)
            if item is not None:
                item.inspection_id, item.answered = row.id, view.answered
                # No answer is a finding: it stands as the verdict until the inspector
                # writes another one.
                if state == "not_answered" and item.verdict is None:
                    item.verdict, item.decided_by, item.decided_at = "no_answer", actor.name, now

    async def _open_row(self, s: AsyncSession, inspection_id: int) -> Inspection:
        row = await s.get(Inspection, inspection_id)
        if row is None:
            raise no_inspection(inspection_id)
        return row

    # --- reads ------------------------------------------------------------------------

    async def get(self, inspection_id: int) -> InspectionView:
        async with self.db.session() as s:
            return InspectionView.of(await self._open_row(s, inspection_id), self.now())

    async def list(self, f: InspectionFilter) -> list[InspectionView]:
        now = self.now()
        async with self.db.session() as s:
            rows = await s.scalars(
                _filtered(f).order_by(Inspection.id.desc()).limit(max(1, min(f.limit, MAX_LIST)))
            )
            return [InspectionView.of(r, now) for r in rows]


def _filtered(f: InspectionFilter) -> Select[Inspection]:
    stmt = select(Inspection)
    if f.province_id is not None:
        stmt = stmt.where(Inspection.province_id == f.province_id)
    if f.site_code:
        stmt = stmt.where(Inspection.site_code == f.site_code)
    if f.inspector:
        stmt = stmt.where(Inspection.inspector == f.inspector)
    if f.state:
        stmt = stmt.where(Inspection.state == f.state)
    if f.round_id is not None:
        stmt = stmt.where(Inspection.round_id == f.round_id)
    if f.since is not None:
        stmt = stmt.where(Inspection.requested_at >= f.since)
    if f.until is not None:
        stmt = stmt.where(Inspection.requested_at < f.until)
    return stmt


def _summary(view: InspectionView) -> JsonObject:
    """The closing audit row's details: the whole inspection in one record."""
    return {
        "inspection_id": view.id,
        "site_name": view.site_name,
        "province": view.province_name,
        "inspector": view.inspector,
        "inspector_role": view.inspector_role,
        "requested_at": view.requested_at.isoformat(),
        "answered": view.answered,
        "answer_s": view.answer_s(),
        "duration_s": view.duration_s(),
        "mode": view.mode,
        "calls": view.call_count,
        "call_s": view.call_seconds,
        "reason": view.reason,
        "round_id": view.round_id,
        "recorded": view.recorded,
    }


def no_inspection(inspection_id: int) -> NotFound:
    """The answer for an unknown inspection id, and for one out of the caller's reach."""
    return NotFound(f"no inspection {inspection_id}", code="no_inspection")
