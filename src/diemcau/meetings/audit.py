"""Transitional: the audit log moved to `diemcau.audit`; this forwards the old names.

Meetings code still passes principals (or a "system" string) as the actor; they are
turned into an `Actor` here. Removed once meetings passes `Actor` and imports
`diemcau.audit` directly (issue 10, meetings side).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from diemcau.accounts.actors import actor_of
from diemcau.accounts.service import SitePrincipal, StaffPrincipal
from diemcau.actors import Actor
from diemcau.audit import AuditQuery, AuditRecord, audit_csv, query_audit
from diemcau.audit import record_audit as _record

__all__ = ["AuditQuery", "AuditRecord", "audit_csv", "query_audit", "record_audit"]


def _actor(actor: object) -> Actor:
    if isinstance(actor, Actor):
        return actor
    if isinstance(actor, StaffPrincipal | SitePrincipal):
        return actor_of(actor)
    return Actor.system(str(actor)[:200])


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
    """`diemcau.audit.record_audit` for an actor given as a principal or a label."""
    await _record(session, _actor(actor), action, meeting_id, target=target, details=details, at=at)
