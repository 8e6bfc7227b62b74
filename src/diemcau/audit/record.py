"""Appending to the audit log inside the caller's own unit of work.

Any service records an action with `record_audit` in the session that makes the
change, so the action and its audit record commit (or fail) together. There is
deliberately no update or delete function; the database refuses UPDATE and DELETE
with a trigger too (migration ``meetings_0001``), so the log cannot be altered
through the API or the ORM (docs/architecture.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from diemcau.actors import Actor
from diemcau.audit.models import AuditEntry
from diemcau.store import Database

__all__ = ["record_action", "record_audit"]


async def record_audit(
    session: AsyncSession,
    actor: Actor,
    action: str,
    meeting_id: int | None = None,
    target: str | None = None,
    details: Mapping[str, object] | None = None,
    *,
    at: datetime | None = None,
) -> None:
    """Append one audit record in the caller's unit of work.

    Args:
        session: the caller's session; the record commits with the caller's change.
        actor: who acted (a staff member, a site, or the server itself).
        action: a dotted verb, e.g. ``"meeting.start"``, ``"floor.grant"``.
        meeting_id: the meeting concerned, if any.
        target: what the action was applied to (a site code, a directive id ...).
        details: extra JSON-serialisable facts.
        at: the time of the action (defaults to now, UTC).
    """
    session.add(
        AuditEntry(
            at=at or datetime.now(UTC),
            actor_kind=actor.kind,
            actor_id=actor.user_id if actor.kind == "staff" else actor.site_id,
            actor_name=actor.name[:200],
            action=action[:64],
            meeting_id=meeting_id,
            target=target[:300] if target is not None else None,
            details=json.loads(json.dumps(dict(details), default=str)) if details else None,
        )
    )


async def record_action(
    db: Database,
    actor: Actor,
    action: str,
    *,
    target: str | None = None,
    details: Mapping[str, object] | None = None,
) -> None:
    """Append one audit record in a unit of work of its own.

    For an action whose change another module already committed (a staff account
    created through `accounts`, a schema stored by the command center); prefer
    `record_audit` inside the change's own transaction where the writer allows it.
    """
    async with db.session() as session:
        await record_audit(session, actor, action, target=target, details=details)
