"""Reading directives: totals, progress per province, lists, recipients, a site's inbox.

Staff see the directives reaching their scope (a province officer: its province's
sites only); a site sees its own inbox. Nothing here writes (docs/command.md).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, case, func, select

from diemcau.actors import Actor
from diemcau.command.aggregation import province_labels
from diemcau.command.directive_views import (
    DirectiveDetail,
    DirectiveView,
    ProvinceProgress,
    RecipientRow,
    RecipientState,
    directive_view,
    recipient_row,
    site_state,
)
from diemcau.command.models import Directive, DirectiveRecipient
from diemcau.command.timeutil import Clock, aware, now_from
from diemcau.directory.sites import SiteDirectory
from diemcau.errors import Forbidden, NotFound
from diemcau.records import JsonObject
from diemcau.store import Database

__all__ = ["DirectiveReads"]


_Counts = tuple[ColumnElement[int], ColumnElement[int], ColumnElement[int], ColumnElement[int]]


def _counts(deadline: datetime | None, now: datetime) -> _Counts:
    """SQL expressions: recipients, acknowledged, completed, overdue (for GROUP BY)."""
    R = DirectiveRecipient
    overdue: ColumnElement[int]
    if deadline is not None and now > deadline:
        overdue = func.sum(case((R.completed_at.is_(None), 1), else_=0))
    else:
        overdue = func.sum(0)
    return (
        func.count(),
        func.count(R.acknowledged_at),
        func.count(R.completed_at),
        overdue,
    )


class DirectiveReads:
    """The read side of the directive service (its writes extend it).

    Args:
        db: the store.
        clock: wall clock (overdue is decided by it).
        sites: the directory's sites (recipients' codes and names).
    """

    def __init__(self, db: Database, clock: Clock, sites: SiteDirectory) -> None:
        self.db = db
        self.clock = clock
        self.sites = sites

    async def _view(self, directive_id: int, province_id: int | None = None) -> DirectiveView:
        now = now_from(self.clock)
        async with self.db.session() as s:
            d = await s.get(Directive, directive_id)
            if d is None:
                raise NotFound(f"directive {directive_id} does not exist", code="no_directive")
            deadline = aware(d.deadline) if d.deadline else None
            q = select(*_counts(deadline, now)).where(DirectiveRecipient.directive_id == d.id)
            if province_id is not None:
                q = q.where(DirectiveRecipient.province_id == province_id)
            n, ack, done, late = (await s.execute(q)).one()
        return directive_view(d, (int(n), int(ack), int(done), int(late or 0)))

    async def get(self, actor: Actor, directive_id: int) -> DirectiveView:
        """A directive with its totals (an officer: its province's sites only)."""
        actor.require_staff("read directives")
        view = await self._view(directive_id, actor.province_id)
        if actor.province_id is not None and view.recipients == 0:
            raise NotFound(f"directive {directive_id} does not exist", code="no_directive")
        return view

    async def progress(self, actor: Actor, directive_id: int) -> list[ProvinceProgress]:
        """Acknowledgement and completion per province."""
        view = await self.get(actor, directive_id)
        now = now_from(self.clock)
        R = DirectiveRecipient
        q = (
            select(R.province_id, *_counts(view.deadline, now))
            .where(R.directive_id == directive_id)
            .group_by(R.province_id)
            .order_by(R.province_id)
        )
        if actor.province_id is not None:
            q = q.where(R.province_id == actor.province_id)
        async with self.db.session() as s:
            rows = (await s.execute(q)).all()
        return [
            ProvinceProgress(
                province_id=pid,
                recipients=int(n),
                acknowledged=int(a),
                completed=int(c),
                overdue=int(o or 0),
            )
            for pid, n, a, c, o in rows
        ]

    async def detail(self, actor: Actor, directive_id: int) -> DirectiveDetail:
        """A directive with its progress per province, each province named."""
        view = await self.get(actor, directive_id)
        progress = await self.progress(actor, directive_id)
        labels = await province_labels(self.db, [p.province_id for p in progress])
        named = [(p, labels.get(p.province_id) if p.province_id else None) for p in progress]
        return DirectiveDetail(view, named)

    async def list_directives(
        self,
        actor: Actor,
        *,
        open_only: bool = False,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[DirectiveView]:
        """Directives newest first with totals; an officer sees those reaching its province."""
        actor.require_staff("read directives")
        now = now_from(self.clock)
        R = DirectiveRecipient
        q = select(Directive).order_by(Directive.id.desc()).limit(max(1, min(limit, 500)))
        if before_id is not None:
            q = q.where(Directive.id < before_id)
        if actor.province_id is not None:
            q = q.where(
                select(R.site_id)
                .where(R.directive_id == Directive.id, R.province_id == actor.province_id)
                .exists()
            )
        async with self.db.session() as s:
            directives = (await s.scalars(q)).all()
            if not directives:
                return []
            overdue_expr = func.sum(
                case(
                    (
                        and_(
                            R.completed_at.is_(None),
                            Directive.deadline.is_not(None),
                            Directive.deadline < now,
                        ),
                        1,
                    ),
                    else_=0,
                )
            )
            cq = (
                select(
                    R.directive_id,
                    func.count(),
                    func.count(R.acknowledged_at),
                    func.count(R.completed_at),
                    overdue_expr,
                )
                .join(Directive, Directive.id == R.directive_id)
                .where(R.directive_id.in_([d.id for d in directives]))
                .group_by(R.directive_id)
            )
            if actor.province_id is not None:
                cq = cq.where(R.province_id == actor.province_id)
            counts = {
                did: (int(n), int(a), int(c), int(o or 0))
                for did, n, a, c, o in (await s.execute(cq)).all()
            }
        views = [directive_view(d, counts.get(d.id, (0, 0, 0, 0))) for d in directives]
        if open_only:
            views = [v for v in views if v.completed < v.recipients]
        return views

    async def overdue(self, actor: Actor, *, limit: int = 100) -> list[DirectiveView]:
        """Directives past their deadline with sites that have not completed them."""
        actor.require_staff("read directives")
        now = now_from(self.clock)
        R = DirectiveRecipient
        q = (
            select(Directive.id)
            .where(
                Directive.deadline.is_not(None),
                Directive.deadline < now,
                select(R.site_id)
                .where(
                    R.directive_id == Directive.id,
                    R.completed_at.is_(None),
                    *(
                        [R.province_id == actor.province_id]
                        if actor.province_id is not None
                        else []
                    ),
                )
                .exists(),
            )
            .order_by(Directive.deadline)
            .limit(max(1, min(limit, 500)))
        )
        async with self.db.session() as s:
            ids = (await s.scalars(q)).all()
        return [await self.get(actor, i) for i in ids]

    async def recipients(
        self,
        actor: Actor,
        directive_id: int,
        *,
        state: RecipientState = "all",
        province_id: int | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[RecipientRow]:
        """Each receiving site with its state, filtered (e.g. the overdue ones)."""
        view = await self.get(actor, directive_id)
        scope = actor.scope(province_id)
        now = now_from(self.clock)
        R = DirectiveRecipient
        q = select(R).where(R.directive_id == directive_id)
        if scope is not None:
            q = q.where(R.province_id == scope)
        if state == "unacknowledged":
            q = q.where(R.acknowledged_at.is_(None))
        elif state == "acknowledged":
            q = q.where(R.acknowledged_at.is_not(None))
        elif state == "incomplete":
            q = q.where(R.completed_at.is_(None))
        elif state == "completed":
            q = q.where(R.completed_at.is_not(None))
        elif state == "overdue":
            if view.deadline is None or now <= view.deadline:
                return []
            q = q.where(R.completed_at.is_(None))
        async with self.db.session() as s:
            rows = (await s.scalars(q)).all()
        known = await self.sites.by_ids((rec.site_id for rec in rows), reload_missing=True)
        listed = sorted(
            ((rec, known[rec.site_id]) for rec in rows if rec.site_id in known),
            key=lambda pair: (pair[0].province_id is None, pair[0].province_id or 0, pair[1].code),
        )
        page = listed[max(0, offset) : max(0, offset) + max(1, min(limit, 20000))]
        return [recipient_row(rec, site.code, site.name) for rec, site in page]

    async def inbox(
        self, actor: Actor, *, include_done: bool = True, limit: int = 100
    ) -> list[JsonObject]:
        """A site's directives, newest first, with its own acknowledgement state."""
        if actor.site_id is None:
            raise Forbidden("the inbox belongs to a site", code="site_only")
        R = DirectiveRecipient
        q = (
            select(Directive, R)
            .join(R, R.directive_id == Directive.id)
            .where(R.site_id == actor.site_id)
            .order_by(Directive.id.desc())
            .limit(max(1, min(limit, 500)))
        )
        if not include_done:
            q = q.where(R.completed_at.is_(None))
        async with self.db.session() as s:
            rows = (await s.execute(q)).all()
        out = []
        for d, rec in rows:
            view = directive_view(d, (d.recipients_count, 0, 0, 0))
            out.append({**view.message(), **site_state(rec)})
        return out
