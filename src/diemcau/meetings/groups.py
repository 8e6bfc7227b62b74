"""Saved site groups: named invitation rules reused across meetings.

A group is an `InviteSpec` without nested groups ("19 southern provinces" = 19
province units; "flood-hit communes" = a list of sites). Every change is audited.

Only the group's creator or an admin changes or deletes it. A scheduled meeting
resolves the groups it names when it starts, so changing a group changes that
meeting's invitations: while a scheduled meeting names the group, only someone
who may run that meeting (its chair, a delegate, an admin) may change or delete it
(docs/meetings.md, "Who may act").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from diemcau.actors import Actor
from diemcau.audit import record_audit
from diemcau.errors import Conflict, Forbidden, Invalid, NotFound
from diemcau.meetings.access import require_control
from diemcau.meetings.invites import Invitations, InviteSpec
from diemcau.meetings.models import Meeting, SiteGroup
from diemcau.records import Record
from diemcau.store import Database
from diemcau.text import nfc

__all__ = ["GroupView", "SiteGroups"]


@dataclass(frozen=True)
class GroupView(Record):
    id: int
    name: str
    description: str
    spec: InviteSpec
    site_count: int
    updated_at: datetime


def _check(name: str, spec: InviteSpec) -> str:
    clean = nfc(name).strip()
    if not clean or len(clean) > 200:
        raise Invalid("a group name needs 1 to 200 characters")
    if spec.group_ids:
        raise Invalid("a saved group cannot contain other groups; list its areas and sites")
    if spec.is_empty:
        raise Invalid("a saved group must name the whole country, units or sites")
    return clean


async def _check_may_change(s: AsyncSession, actor: Actor, row: SiteGroup, what: str) -> None:
    """Refuse unless `actor` created the group or is an admin, and may run every
    scheduled meeting that names it (their invitations would change)."""
    if actor.kind == "system":
        return
    actor.require_staff(what)
    if actor.role != "admin" and (actor.user_id is None or actor.user_id != row.created_by_user_id):
        raise Forbidden(
            f"only the creator of site group {row.id} or an admin may {what}", code="not_owner"
        )
    scheduled = (await s.scalars(select(Meeting).where(Meeting.state == "scheduled"))).all()
    for m in scheduled:
        if row.id in InviteSpec.from_json(m.invite_spec or {}).group_ids:
            try:
                require_control(actor, m, what)
            except Forbidden:
                raise Forbidden(
                    f"scheduled meeting {m.id} invites site group {row.id}: only its chair, "
                    f"a delegate or an admin may {what}",
                    code="group_in_use",
                ) from None


@dataclass(eq=False, repr=False)
class SiteGroups:
    """Saved site groups: create, edit, delete (audited) and list with their site counts.

    Args:
        db: the store.
        invitations: resolves a group's rule (its site count).
        clock: wall clock in seconds (tests pass a fake one).
    """

    db: Database
    invitations: Invitations
    _: KW_ONLY
    clock: Callable[[], float] = time.time

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    async def _view(self, row: SiteGroup) -> GroupView:
        spec = InviteSpec.from_json(row.spec)
        count = len(await self.invitations.resolve(spec))
        return GroupView(row.id, row.name, row.description, spec, count, row.updated_at)

    async def create(
        self, actor: Actor, name: str, spec: InviteSpec, *, description: str = ""
    ) -> GroupView:
        clean = _check(name, spec)
        now = self._now()
        try:
            async with self.db.session() as s:
                row = SiteGroup(
                    name=clean,
                    description=nfc(description),
                    spec=spec.to_json(),
                    created_by_user_id=actor.user_id,
                    created_at=now,
                    updated_at=now,
                )
                s.add(row)
                await s.flush()
                await record_audit(
                    s,
                    actor,
                    "group.create",
                    target=clean,
                    details={"spec": spec.to_json()},
                    at=now,
                )
        except IntegrityError as exc:
            raise Conflict(f"a site group named {clean!r} already exists") from exc
        return await self._view(row)

    async def update(
        self,
        actor: Actor,
        group_id: int,
        *,
        name: str | None = None,
        spec: InviteSpec | None = None,
        description: str | None = None,
    ) -> GroupView:
        now = self._now()
        try:
            async with self.db.session() as s:
                row = await s.get(SiteGroup, group_id)
                if row is None:
                    raise NotFound(f"site group {group_id} not found")
                await _check_may_change(s, actor, row, "edit this site group")
                new_spec = spec or InviteSpec.from_json(row.spec)
                row.name = _check(name if name is not None else row.name, new_spec)
                row.spec = new_spec.to_json()
                if description is not None:
                    row.description = nfc(description)
                row.updated_at = now
                await s.flush()
                await record_audit(
                    s,
                    actor,
                    "group.update",
                    target=row.name,
                    details={"group_id": group_id, "spec": row.spec},
                    at=now,
                )
        except IntegrityError as exc:
            raise Conflict(f"a site group named {name!r} already exists") from exc
        return await self._view(row)

    async def delete(self, actor: Actor, group_id: int) -> None:
        """Delete a group. Meetings that already started keep their resolved sites; a
        scheduled meeting still naming the group is refused at start with a clear error."""
        now = self._now()
        async with self.db.session() as s:
            row = await s.get(SiteGroup, group_id)
            if row is None:
                raise NotFound(f"site group {group_id} not found")
            await _check_may_change(s, actor, row, "delete this site group")
            await record_audit(
                s,
                actor,
                "group.delete",
                target=row.name,
                details={"group_id": group_id},
                at=now,
            )
            await s.delete(row)

    async def get(self, group_id: int) -> GroupView:
        async with self.db.session() as s:
            row = await s.get(SiteGroup, group_id)
        if row is None:
            raise NotFound(f"site group {group_id} not found")
        return await self._view(row)

    async def site_ids(self, group_id: int) -> list[int]:
        """The sites a saved group reaches now (a directive aimed at the group goes to them)."""
        group = await self.get(group_id)
        return sorted(await self.invitations.resolve(group.spec))

    async def list_groups(self) -> list[GroupView]:
        async with self.db.session() as s:
            rows = (await s.scalars(select(SiteGroup).order_by(func.lower(SiteGroup.name)))).all()
        return [await self._view(r) for r in rows]
