"""Audit records of recording actions (policy changes, deletions, minutes), in the caller's
unit of work, through the shared append-only audit log."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from diemcau.actors import Actor
from diemcau.audit import AuditQuery, query_audit, record_audit
from diemcau.store import Database

__all__ = ["AuditFact", "audit", "audit_facts"]


@dataclass(frozen=True)
class AuditFact:
    """An audit record as the timeline shows it."""

    at: datetime
    action: str
    actor_name: str
    target: str | None
    details: Mapping[str, object] | None


async def audit(
    session: AsyncSession,
    actor: Actor,
    action: str,
    meeting_id: int | None,
    *,
    target: str | None = None,
    details: Mapping[str, object] | None = None,
    at: datetime | None = None,
) -> None:
    """Append one audit record for ``actor`` (staff, site or the system)."""
    await record_audit(session, actor, action, meeting_id, target, details, at=at)


async def audit_facts(db: Database, meeting_id: int, actions: tuple[str, ...]) -> list[AuditFact]:
    """The audit records of ``actions`` about one meeting, in time order."""
    out: list[AuditFact] = []
    for action in actions:
        offset = 0
        while True:
            total, page = await query_audit(
                db, AuditQuery(meeting_id=meeting_id, action=action, limit=1000, offset=offset)
            )
            out += [AuditFact(r.at, r.action, r.actor_name, r.target, r.details) for r in page]
            offset += len(page)
            if not page or offset >= total:
                break
    return sorted(out, key=lambda f: f.at)
