"""Directives: orders from staff to a set of sites, with acknowledgement and completion.

``issue_directive`` persists the directive and one recipient row per site,
records the audit entry in the same transaction, then hands the message to
the presence hub's lossless per-site delivery (``directive.issued``, with the
directive id as the idempotent message id) and publishes a staff event. A
site acknowledges (``directive.ack``) and reports completion with a note
(``directive.complete``); staff read rates per province, overdue items, and
may remind (re-send to sites that have not acknowledged) or escalate (an
alert to each province officer whose sites lag behind).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import and_, case, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from diemcau.actors import Actor
from diemcau.audit import record_audit
from diemcau.command.aggregation import ProvinceLabel, province_labels
from diemcau.command.alerts import AlertService
from diemcau.command.batching import GroupCommit
from diemcau.command.models import Directive, DirectiveRecipient
from diemcau.command.ports import SiteDelivery
from diemcau.command.targets import Target, resolve_target
from diemcau.command.timeutil import Clock, aware, iso, now_from
from diemcau.command.writes import writing
from diemcau.directory.sites import SiteDirectory
from diemcau.errors import Conflict, Forbidden, Invalid, NotFound
from diemcau.store import Database

__all__ = [
    "Attachment",
    "DirectiveDetail",
    "DirectiveIn",
    "DirectiveService",
    "DirectiveView",
    "ProvinceProgress",
    "SiteDelivery",
    "Target",
]

log = logging.getLogger(__name__)

Priority = Literal["low", "normal", "high", "urgent"]
ISSUER_ROLES = ("admin", "chair", "province_officer")
RecipientState = Literal[
    "all", "unacknowledged", "acknowledged", "incomplete", "completed", "overdue"
]


class Attachment(BaseModel):
    """Metadata of a file sent with a directive (the file itself lives elsewhere)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    url: str = Field(default="", max_length=1000)
    mime: str = Field(default="", max_length=100)
    size: int = Field(default=0, ge=0)
    sha256: str = Field(default="", pattern=r"^([0-9a-f]{64})?$")

    @field_validator("url")
    @classmethod
    def _safe_url(cls, value: str) -> str:
        if value and not value.startswith(("https://", "http://", "/")):
            raise ValueError("must be an http(s) URL or a path on this server")
        return value


class DirectiveIn(BaseModel):
    """A directive as staff write it."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=300)
    body: str = Field(min_length=1, max_length=20000)
    priority: Priority = "normal"
    deadline: datetime | None = None
    attachments: list[Attachment] = Field(default_factory=list, max_length=20)
    target: Target
    # A client-chosen id making a retried issue return the same directive.
    client_id: str | None = Field(default=None, min_length=8, max_length=64)

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> DirectiveIn:
        """Validate `data`, raising `Invalid` that names the first bad field."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "directive"
            raise Invalid(f"{where}: {first.get('msg', 'invalid')}", code="bad_directive") from exc


@dataclass(frozen=True)
class ProvinceProgress:
    province_id: int | None
    recipients: int
    acknowledged: int
    completed: int
    overdue: int

    def public(self) -> dict[str, Any]:
        r = self.recipients or 1
        return {
            "province_id": self.province_id,
            "recipients": self.recipients,
            "acknowledged": self.acknowledged,
            "completed": self.completed,
            "overdue": self.overdue,
            "ack_rate": round(self.acknowledged / r, 4),
            "completion_rate": round(self.completed / r, 4),
        }


@dataclass(frozen=True)
class DirectiveView:
    id: int
    title: str
    body: str
    priority: str
    deadline: datetime | None
    attachments: list[dict[str, Any]]
    target: dict[str, Any]
    issued_by: str
    issuer_province_id: int | None
    issued_at: datetime
    reminders: int
    escalated_at: datetime | None
    recipients: int
    acknowledged: int
    completed: int
    overdue: int

    def public(self) -> dict[str, Any]:
        r = self.recipients or 1
        return {
            "id": self.id,
            "title": self.title,
            "body": self.body,
            "priority": self.priority,
            "deadline": iso(self.deadline),
            "attachments": self.attachments,
            "target": self.target,
            "issued_by": self.issued_by,
            "issuer_province_id": self.issuer_province_id,
            "issued_at": iso(self.issued_at),
            "reminders": self.reminders,
            "escalated_at": iso(self.escalated_at),
            "recipients": self.recipients,
            "acknowledged": self.acknowledged,
            "completed": self.completed,
            "overdue": self.overdue,
            "ack_rate": round(self.acknowledged / r, 4),
            "completion_rate": round(self.completed / r, 4),
        }

    def message(self) -> dict[str, Any]:
        """The body a site receives (the same for every site: encoded once)."""
        return {
            "id": self.id,
            "title": self.title,
            "body": self.body,
            "priority": self.priority,
            "deadline": iso(self.deadline),
            "attachments": self.attachments,
            "issued_at": iso(self.issued_at),
            "issued_by": self.issued_by,
        }


@dataclass(frozen=True)
class DirectiveDetail:
    """A directive with its progress per province (and the province's code and name)."""

    view: DirectiveView
    provinces: list[tuple[ProvinceProgress, ProvinceLabel | None]]

    def public(self) -> dict[str, Any]:
        return {
            **self.view.public(),
            "provinces": [
                {
                    **p.public(),
                    "code": label.code if label is not None else None,
                    "name": label.name if label is not None else None,
                }
                for p, label in self.provinces
            ],
        }


def _counts(deadline: datetime | None, now: datetime) -> tuple[Any, Any, Any, Any]:
    """SQL expressions: recipients, acknowledged, completed, overdue (for GROUP BY)."""
    R = DirectiveRecipient
    overdue: Any
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


@dataclass(frozen=True)
class _SiteAct:
    """One site's acknowledgement or completion waiting to be written."""

    directive_id: int
    site_id: int
    complete: bool
    note: str
    now: datetime

    @property
    def key(self) -> tuple[int, int]:
        return (self.directive_id, self.site_id)


# (the site's state, its province, whether anything changed)
_ActResult = tuple[dict[str, Any], int | None, bool]


class DirectiveService:
    """Issues directives and tracks each site's acknowledgement and completion.

    Args:
        db: the store.
        clock: wall clock (injected in tests: overdue is decided by it).
        delivery: the hub's lossless delivery to sites (None: stored, delivered at the
            next start with a hub).
        alerts: where escalations are raised.
        sites: the directory's sites (who a target reaches; recipients' codes).

    Issuing, reminding and escalating are written to the audit log in the same
    transaction as the change.
    """

    def __init__(
        self,
        db: Database,
        clock: Clock,
        delivery: SiteDelivery | None,
        alerts: AlertService,
        sites: SiteDirectory | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self._delivery = delivery
        self.alerts = alerts
        self.sites = sites if sites is not None else SiteDirectory(db)
        self._acts: GroupCommit[_SiteAct, _ActResult] = GroupCommit(self._write_acts)

    # --- issuing ---------------------------------------------------------------------

    async def issue_directive(self, actor: Actor, data: DirectiveIn) -> DirectiveView:
        """Persist, audit, deliver (lossless) and announce a new directive."""
        actor.require_staff("issue directives")
        if actor.role not in ISSUER_ROLES:
            raise Forbidden(
                f"role '{actor.role}' may not issue directives (needs: {', '.join(ISSUER_ROLES)})",
                code="role",
            )
        now = now_from(self.clock)
        _check_size(data)
        deadline = data.deadline
        if deadline is not None:
            if deadline.tzinfo is None:
                raise Invalid("deadline: must include a time zone", code="bad_deadline")
            # Stored in UTC: SQLite keeps the wall time only.
            deadline = deadline.astimezone(UTC)
            if deadline <= now:
                raise Invalid("deadline: must be in the future", code="bad_deadline")
        if data.client_id is not None:
            async with self.db.session() as s:
                known = await s.scalar(
                    select(Directive.id).where(Directive.client_id == data.client_id)
                )
            if known is not None:
                return await self.get(actor, known)
        async with self.db.session() as s:
            recipients = await resolve_target(s, self.sites, actor, data.target)
        try:
            async with writing(self.db) as s:
                row = Directive(
                    title=data.title.strip(),
                    body=data.body.strip(),
                    priority=data.priority,
                    deadline=deadline,
                    attachments=[a.model_dump() for a in data.attachments],
                    target=data.target.model_dump(exclude_defaults=True),
                    issued_by=actor.label,
                    issuer_province_id=actor.province_id,
                    issued_at=now,
                    reminders=0,
                    recipients_count=len(recipients),
                    client_id=data.client_id,
                )
                s.add(row)
                await s.flush()
                rows = [
                    {
                        "directive_id": row.id,
                        "site_id": sid,
                        "province_id": pid,
                        "completion_note": "",
                        "reminded": 0,
                    }
                    for sid, pid in recipients
                ]
                for i in range(0, len(rows), 2000):
                    await s.execute(insert(DirectiveRecipient), rows[i : i + 2000])
                await record_audit(
                    s,
                    actor,
                    "directive.issue",
                    target=f"directive:{row.id}",
                    details={
                        "title": row.title,
                        "recipients": len(recipients),
                        "priority": row.priority,
                    },
                )
                directive_id = row.id
        except IntegrityError:
            # The same client_id raced in twice: the first one stands.
            async with self.db.session() as s:
                known = await s.scalar(
                    select(Directive.id).where(Directive.client_id == data.client_id)
                )
            if known is None:
                raise
            return await self.get(actor, known)
        view = await self.get(actor, directive_id)
        await self._deliver(view, [sid for sid, _ in recipients], now)
        await self._staff_event("directive.issued", view.public(), view.issuer_province_id)
        return view

    async def _deliver(self, view: DirectiveView, site_ids: list[int], now: datetime) -> None:
        hub = self._delivery
        if hub is None:
            log.warning("no presence hub: directive %s stored, not yet delivered", view.id)
            return
        try:
            await hub.send(
                site_ids, "directive.issued", view.message(), msg_id=f"directive:{view.id}"
            )
        except Exception:
            log.exception("delivery of directive %s failed; redelivered at next start", view.id)
            return
        async with writing(self.db) as s:
            await s.execute(
                update(DirectiveRecipient)
                .where(
                    DirectiveRecipient.directive_id == view.id,
                    DirectiveRecipient.delivered_at.is_(None),
                )
                .values(delivered_at=now)
            )

    async def deliver_pending(self) -> int:
        """Hand the hub every directive copy it never accepted (after a crash or outage).

        The message id is the directive's, so a copy the hub did store is not
        sent twice.
        """
        async with self.db.session() as s:
            rows = (
                await s.execute(
                    select(DirectiveRecipient.directive_id, DirectiveRecipient.site_id).where(
                        DirectiveRecipient.delivered_at.is_(None)
                    )
                )
            ).all()
        by_directive: dict[int, list[int]] = {}
        for did, sid in rows:
            by_directive.setdefault(did, []).append(sid)
        now = now_from(self.clock)
        for did, sids in sorted(by_directive.items()):
            view = await self._view(did)
            await self._deliver(view, sids, now)
        return sum(len(v) for v in by_directive.values())

    async def _staff_event(
        self, kind: str, body: Mapping[str, Any], province_id: int | None
    ) -> None:
        hub = self._delivery
        if hub is None:
            return
        try:
            await hub.publish_staff_event(kind, body, province_id=province_id)
        except Exception:
            log.exception("could not publish %s", kind)

    # --- site actions ----------------------------------------------------------------

    async def acknowledge(self, actor: Actor, directive_id: int) -> dict[str, Any]:
        """A site confirms it received and read the directive (idempotent)."""
        return await self._site_action(actor, directive_id, complete=False, note="")

    async def complete(self, actor: Actor, directive_id: int, note: str = "") -> dict[str, Any]:
        """A site reports the directive carried out, with a note (acknowledges it too)."""
        if len(note) > 4000:
            raise Invalid("note: at most 4000 characters", code="bad_note")
        return await self._site_action(actor, directive_id, complete=True, note=note.strip())

    async def _site_action(
        self, actor: Actor, directive_id: int, *, complete: bool, note: str
    ) -> dict[str, Any]:
        if actor.site_id is None:
            raise Forbidden("only the receiving site acknowledges or completes", code="site_only")
        act = _SiteAct(directive_id, actor.site_id, complete, note, now_from(self.clock))
        state, province_id, changed = await self._acts.submit(act)
        if changed:
            kind = "directive.completed" if complete else "directive.acknowledged"
            await self._staff_event(
                kind,
                {
                    "directive_id": directive_id,
                    "site_id": actor.site_id,
                    "province_id": province_id,
                    **state,
                },
                province_id,
            )
        if complete:
            await self._clear_escalation_if_done(directive_id, province_id)
        return {"directive_id": directive_id, **state}

    async def _write_acts(self, acts: Sequence[_SiteAct]) -> list[_ActResult | BaseException]:
        """Acknowledgements and completions of many sites in one transaction.

        A whole country acknowledging a directive within seconds would
        otherwise be thousands of one-row transactions (``bench/command.py``).
        """
        R = DirectiveRecipient
        out: list[_ActResult | BaseException] = []
        async with writing(self.db) as s:
            by_directive: dict[int, list[int]] = {}
            for a in acts:
                by_directive.setdefault(a.directive_id, []).append(a.site_id)
            found: dict[tuple[int, int], DirectiveRecipient] = {}
            for did, sids in by_directive.items():
                q = (
                    select(R)
                    .where(R.directive_id == did, R.site_id.in_(sids))
                    .order_by(R.site_id)
                    .with_for_update()
                )
                for row in (await s.scalars(q)).all():
                    found[(did, row.site_id)] = row
            for a in acts:
                rec = found.get((a.directive_id, a.site_id))
                if rec is None:
                    out.append(
                        NotFound(
                            f"directive {a.directive_id} was not sent to this site",
                            code="no_directive",
                        )
                    )
                    continue
                if a.complete and rec.completed_at is not None:
                    out.append(
                        Conflict(
                            f"directive {a.directive_id} was already reported completed",
                            code="already_completed",
                        )
                    )
                    continue
                changed = False
                if rec.acknowledged_at is None:
                    rec.acknowledged_at = a.now
                    changed = True
                if a.complete:
                    rec.completed_at = a.now
                    rec.completion_note = a.note
                    changed = True
                out.append((_site_state(rec), rec.province_id, changed))
            await s.flush()
        return out

    async def _clear_escalation_if_done(self, directive_id: int, province_id: int | None) -> None:
        key = f"{directive_id}:province:{province_id or 0}"
        if await self.alerts.is_active("directive_escalated", key) is None:
            return
        async with self.db.session() as s:
            left = await s.scalar(
                select(func.count())
                .select_from(DirectiveRecipient)
                .where(
                    DirectiveRecipient.directive_id == directive_id,
                    DirectiveRecipient.province_id == province_id,
                    DirectiveRecipient.completed_at.is_(None),
                )
            )
        if not left:
            await self.alerts.clear_alert("directive_escalated", key)

    async def inbox(
        self, actor: Actor, *, include_done: bool = True, limit: int = 100
    ) -> list[dict[str, Any]]:
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
            view = _directive_view(d, (d.recipients_count, 0, 0, 0))
            out.append({**view.message(), **_site_state(rec)})
        return out

    # --- staff views -----------------------------------------------------------------

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
        return _directive_view(d, (int(n), int(ack), int(done), int(late or 0)))

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
            ProvinceProgress(pid, int(n), int(a), int(c), int(o or 0)) for pid, n, a, c, o in rows
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
        views = [_directive_view(d, counts.get(d.id, (0, 0, 0, 0))) for d in directives]
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
    ) -> list[dict[str, Any]]:
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
        return [
            {
                "site_id": rec.site_id,
                "code": site.code,
                "name": site.name,
                "province_id": rec.province_id,
                **_site_state(rec),
            }
            for rec, site in page
        ]

    # --- remind and escalate -----------------------------------------------------------

    async def remind(
        self, actor: Actor, directive_id: int, *, include_unfinished: bool = False
    ) -> int:
        """Re-send the directive to sites that have not acknowledged it (or, with
        `include_unfinished`, not completed it); returns how many were reminded."""
        actor.require_staff("remind sites")
        view = await self.get(actor, directive_id)
        now = now_from(self.clock)
        R = DirectiveRecipient
        pending = R.completed_at.is_(None) if include_unfinished else R.acknowledged_at.is_(None)
        async with writing(self.db) as s:
            q = select(R.site_id).where(R.directive_id == directive_id, pending)
            if actor.province_id is not None:
                q = q.where(R.province_id == actor.province_id)
            site_ids = sorted((await s.scalars(q)).all())
            if not site_ids:
                return 0
            d = await s.get(Directive, directive_id)
            assert d is not None
            d.reminders += 1
            d.last_reminded_at = now
            number = d.reminders
            for i in range(0, len(site_ids), 900):
                await s.execute(
                    update(R)
                    .where(R.directive_id == directive_id, R.site_id.in_(site_ids[i : i + 900]))
                    .values(reminded=R.reminded + 1)
                )
            await record_audit(
                s,
                actor,
                "directive.remind",
                target=f"directive:{directive_id}",
                details={"sites": len(site_ids), "reminder": number},
            )
        hub = self._delivery
        if hub is not None:
            await hub.send(
                site_ids,
                "directive.reminder",
                {**view.message(), "reminder": number},
                msg_id=f"directive:{directive_id}:reminder:{number}:{actor.province_id or 0}",
            )
        await self._staff_event(
            "directive.reminded",
            {"directive_id": directive_id, "sites": len(site_ids), "reminder": number},
            actor.province_id,
        )
        return len(site_ids)

    async def escalate(
        self, actor: Actor, directive_id: int, *, province_id: int | None = None
    ) -> list[ProvinceProgress]:
        """Alert the province officer of each province whose sites have not completed.

        Raises one ``directive_escalated`` alert per lagging province (scoped to
        it, so its officer sees it); the alert clears when the province's last
        site completes. Returns the escalated provinces.
        """
        actor.require_staff("escalate directives")
        if actor.province_id is not None:
            raise Forbidden(
                "escalation goes to province officers; only central staff escalate", code="role"
            )
        view = await self.get(actor, directive_id)
        lagging = [
            p
            for p in await self.progress(actor, directive_id)
            if p.completed < p.recipients and (province_id is None or p.province_id == province_id)
        ]
        now = now_from(self.clock)
        async with writing(self.db) as s:
            d = await s.get(Directive, directive_id)
            assert d is not None
            d.escalated_at = now
            await record_audit(
                s,
                actor,
                "directive.escalate",
                target=f"directive:{directive_id}",
                details={"provinces": [p.province_id for p in lagging]},
            )
        for p in lagging:
            missing = p.recipients - p.completed
            await self.alerts.raise_alert(
                "directive_escalated",
                f"{directive_id}:province:{p.province_id or 0}",
                message_vi=(
                    f"Chỉ đạo “{view.title}”: {missing}/{p.recipients} điểm cầu "
                    f"chưa báo cáo hoàn thành"
                ),
                message_en=(
                    f"Directive “{view.title}”: {missing} of {p.recipients} sites "
                    f"have not reported completion"
                ),
                severity="critical" if p.overdue else "warning",
                province_id=p.province_id,
                details={"directive_id": directive_id, **p.public(), "escalated_by": actor.label},
            )
            await self._staff_event(
                "directive.escalated",
                {"directive_id": directive_id, "title": view.title, **p.public()},
                p.province_id,
            )
        return lagging


# What one site message may carry (the hub's limit, less room for the envelope
# and the reminder fields).
MAX_MESSAGE_BODY = 60_000


def _check_size(data: DirectiveIn) -> None:
    """Refuse a directive the hub could not deliver, before anything is stored."""
    probe = {
        "id": 2**31,
        "title": data.title,
        "body": data.body,
        "priority": data.priority,
        "deadline": "2000-01-01T00:00:00+00:00",
        "attachments": [a.model_dump() for a in data.attachments],
        "issued_at": "2000-01-01T00:00:00+00:00",
        "issued_by": "staff:" + "x" * 64,
        "reminder": 2**31,
    }
    size = len(json.dumps(probe, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_MESSAGE_BODY:
        raise Invalid(
            f"body: the directive is {size} bytes with its attachments list; at most "
            f"{MAX_MESSAGE_BODY} can be delivered (attach long texts as files)",
            code="too_big",
        )


def _site_state(rec: DirectiveRecipient) -> dict[str, Any]:
    return {
        "delivered_at": iso(rec.delivered_at),
        "acknowledged_at": iso(rec.acknowledged_at),
        "completed_at": iso(rec.completed_at),
        "completion_note": rec.completion_note,
        "reminded": rec.reminded,
    }


def _directive_view(d: Directive, counts: tuple[int, int, int, int]) -> DirectiveView:
    n, ack, done, late = counts
    return DirectiveView(
        id=d.id,
        title=d.title,
        body=d.body,
        priority=d.priority,
        deadline=aware(d.deadline) if d.deadline else None,
        attachments=list(d.attachments or []),
        target=dict(d.target or {}),
        issued_by=d.issued_by,
        issuer_province_id=d.issuer_province_id,
        issued_at=aware(d.issued_at),
        reminders=d.reminders,
        escalated_at=aware(d.escalated_at) if d.escalated_at else None,
        recipients=n,
        acknowledged=ack,
        completed=done,
        overdue=late,
    )
