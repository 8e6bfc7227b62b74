"""The append-only audit log of chair and operator actions, shared by every package.

Any service records an action inside its own unit of work with `record_audit`, so the
action and its audit record commit (or fail) together. There is deliberately no
update or delete function; the database refuses UPDATE/DELETE with a trigger too
(migration ``meetings_0001``), so the log cannot be altered through the API or the ORM.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from diemcau.meetings.models import AuditEntry
from diemcau.store import Database
from diemcau.text import spreadsheet_row

__all__ = ["AuditQuery", "AuditRecord", "audit_csv", "query_audit", "record_audit"]

MAX_PAGE = 1000


@dataclass(frozen=True)
class AuditRecord:
    """One audit entry as callers see it."""

    id: int
    at: datetime
    actor_kind: str
    actor_id: int | None
    actor_name: str
    action: str
    meeting_id: int | None
    target: str | None
    details: dict[str, Any] | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "actor_kind": self.actor_kind,
            "actor_id": self.actor_id,
            "actor_name": self.actor_name,
            "action": self.action,
            "meeting_id": self.meeting_id,
            "target": self.target,
            "details": self.details,
        }


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


def _actor_fields(actor: object) -> tuple[str, int | None, str]:
    """(kind, id, name) of a staff principal, a site principal, or a free-form string."""
    if isinstance(actor, str):
        return "system", None, actor[:200]
    username = getattr(actor, "username", None)
    if isinstance(username, str):
        user_id = getattr(actor, "user_id", None)
        return "staff", user_id if isinstance(user_id, int) else None, username[:200]
    code = getattr(actor, "code", None)
    if isinstance(code, str):
        site_id = getattr(actor, "site_id", None)
        return "site", site_id if isinstance(site_id, int) else None, code[:200]
    return "system", None, str(actor)[:200]


async def record_audit(
    session: AsyncSession,
    actor: object,
    action: str,
    meeting_id: int | None = None,
    target: str | None = None,
    details: Mapping[str, Any] | None = None,
    *,
    at: datetime | None = None,
) -> None:
    """Append one audit record in the caller's unit of work.

    Args:
        session: the caller's session; the record commits with the caller's change.
        actor: a ``StaffPrincipal`` (username, user_id), a ``SitePrincipal`` (code,
            site_id) or a string such as ``"system"``.
        action: a dotted verb, e.g. ``"meeting.start"``, ``"floor.grant"``.
        meeting_id: the meeting concerned, if any.
        target: what the action was applied to (a site code, a directive id ...).
        details: extra JSON-serialisable facts.
        at: the time of the action (defaults to now, UTC).
    """
    kind, actor_id, name = _actor_fields(actor)
    session.add(
        AuditEntry(
            at=at or datetime.now(UTC),
            actor_kind=kind,
            actor_id=actor_id,
            actor_name=name,
            action=action[:64],
            meeting_id=meeting_id,
            target=target[:300] if target is not None else None,
            details=json.loads(json.dumps(dict(details), default=str)) if details else None,
        )
    )


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
