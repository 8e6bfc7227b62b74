"""Reading the audit log: filtered pages for the API, the whole filtered log as CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, select

from diemcau.audit.models import AuditEntry
from diemcau.records import Record
from diemcau.store import Database
from diemcau.text import spreadsheet_row

__all__ = ["AuditQuery", "AuditRecord", "audit_csv", "query_audit"]

MAX_PAGE = 1000


@dataclass(frozen=True)
class AuditRecord(Record):
    """One audit entry as callers see it (its reply is its fields)."""

    id: int
    at: datetime
    actor_kind: str
    actor_id: int | None
    actor_name: str
    action: str
    meeting_id: int | None
    target: str | None
    details: dict[str, object] | None


@dataclass(frozen=True)
class AuditQuery:
    """Filters for `query_audit`; all optional."""

    meeting_id: int | None = None
    action: str | None = None
    actor_name: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 200
    offset: int = 0


def _filtered(q: AuditQuery) -> Select[AuditEntry]:
    stmt = select(AuditEntry)
    if q.meeting_id is not None:
        stmt = stmt.where(AuditEntry.meeting_id == q.meeting_id)
    if q.action:
        stmt = stmt.where(AuditEntry.action == q.action)
    if q.actor_name:
        stmt = stmt.where(AuditEntry.actor_name == q.actor_name)
    if q.since is not None:
        stmt = stmt.where(AuditEntry.at >= q.since)
    if q.until is not None:
        stmt = stmt.where(AuditEntry.at < q.until)
    return stmt


def _record(row: AuditEntry) -> AuditRecord:
    return AuditRecord(
        id=row.id,
        at=row.at,
        actor_kind=row.actor_kind,
        actor_id=row.actor_id,
        actor_name=row.actor_name,
        action=row.action,
        meeting_id=row.meeting_id,
        target=row.target,
        details=row.details,
    )


async def query_audit(db: Database, q: AuditQuery) -> tuple[int, list[AuditRecord]]:
    """(total matching, one page in time order) of the audit log."""
    limit = max(1, min(q.limit, MAX_PAGE))
    async with db.session() as s:
        base = _filtered(q)
        total = await s.scalar(select(func.count()).select_from(base.subquery()))
        rows = await s.scalars(base.order_by(AuditEntry.id).offset(max(0, q.offset)).limit(limit))
        return int(total or 0), [_record(r) for r in rows]


_CSV_HEADER = (
    "Mã / ID",
    "Thời điểm (UTC) / Time (UTC)",
    "Loại tác nhân / Actor kind",
    "Tác nhân / Actor",
    "Hành động / Action",
    "Cuộc họp / Meeting",
    "Đối tượng / Target",
    "Chi tiết / Details",
)


async def audit_csv(db: Database, q: AuditQuery) -> str:
    """The whole filtered log (no paging) as CSV with Vietnamese-first headings."""
    async with db.session() as s:
        rows: Sequence[AuditEntry] = (await s.scalars(_filtered(q).order_by(AuditEntry.id))).all()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(_CSV_HEADER)
    for r in rows:
        writer.writerow(
            spreadsheet_row(
                (
                    r.id,
                    r.at.isoformat(),
                    r.actor_kind,
                    r.actor_name,
                    r.action,
                    "" if r.meeting_id is None else r.meeting_id,
                    r.target or "",
                    json.dumps(r.details, ensure_ascii=False) if r.details else "",
                )
            )
        )
    return out.getvalue()
