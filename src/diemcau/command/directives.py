"""Directives: orders from staff to a set of sites, with acknowledgement and completion.

``issue_directive`` persists the directive and one recipient row per site,
records the audit entry in the same transaction, then hands the message to
the presence hub's lossless per-site delivery (``directive.issued``, with the
directive id as the idempotent message id) and publishes a staff event. A
site acknowledges (``directive.ack``) and reports completion with a note
(``directive.complete``); staff read rates per province, overdue items, and
may remind (re-send to sites that have not acknowledged) or escalate (an
alert to each province officer whose sites lag behind). Reading directives is
`directive_reads`, which `DirectiveService` extends; their shapes are
`directive_views`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from diemcau.actors import Actor
from diemcau.audit import record_audit
from diemcau.command.alerts import AlertService
from diemcau.command.batching import GroupCommit
from diemcau.command.directive_reads import DirectiveReads
from diemcau.command.directive_views import (
    ISSUER_ROLES,
    Attachment,
    DirectiveDetail,
    DirectiveIn,
    DirectiveView,
    ProvinceProgress,
    check_size,
    site_state,
)
from diemcau.command.models import Directive, DirectiveRecipient
from diemcau.command.ports import SiteDelivery
from diemcau.command.targets import Target, resolve_target
from diemcau.command.timeutil import Clock, now_from
from diemcau.command.writes import writing
from diemcau.directory.sites import SiteDirectory
from diemcau.errors import Conflict, Forbidden, Invalid, NotFound
from diemcau.records import JsonObject
from diemcau.store import Database
from diemcau.tasks import log_step_failure

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
_ActResult = tuple[JsonObject, int | None, bool]


class DirectiveService(DirectiveReads):
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
        super().__init__(db, clock, sites if sites is not None else SiteDirectory(db))
        self._delivery = delivery
        self.alerts = alerts
        self._acts: GroupCommit[_SiteAct, _ActResult] = GroupCommit(self._write_acts)
        # A delivery the hub refused (the store out of reach): `redeliver` tries again.
        self._undelivered = False

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
        check_size(data)
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
        except Exception as exc:
            self._undelivered = True
            log_step_failure(log, f"delivery of directive {view.id} (retried)", exc)
            return
        try:
            async with writing(self.db) as s:
                await s.execute(
                    update(DirectiveRecipient)
                    .where(
                        DirectiveRecipient.directive_id == view.id,
                        DirectiveRecipient.delivered_at.is_(None),
                    )
                    .values(delivered_at=now)
                )
        except Exception:
            self._undelivered = True  # the hub has it; its message id stops a second copy
            raise

    def retry_later(self) -> None:
        """Have the next `redeliver` look for undelivered copies (a redelivery failed)."""
        self._undelivered = True

    async def redeliver(self) -> int:
        """`deliver_pending` once a delivery failed since the last one that went through.

        A directive confirmed to the chair while the hub could not take it (the store out
        of reach for a moment) reaches its sites when the store is back, not only at the
        next start. Cheap when nothing failed: the command center calls it every few
        seconds.
        """
        if not self._undelivered:
            return 0
        self._undelivered = False
        try:
            return await self.deliver_pending()
        except Exception:
            self._undelivered = True
            raise

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
        self, kind: str, body: Mapping[str, object], province_id: int | None
    ) -> None:
        hub = self._delivery
        if hub is None:
            return
        try:
            await hub.publish_staff_event(kind, body, province_id=province_id)
        except Exception:
            log.exception("could not publish %s", kind)

    # --- site actions ----------------------------------------------------------------

    async def acknowledge(self, actor: Actor, directive_id: int) -> JsonObject:
        """A site confirms it received and read the directive (idempotent)."""
        return await self._site_action(actor, directive_id, complete=False, note="")

    async def complete(self, actor: Actor, directive_id: int, note: str = "") -> JsonObject:
        """A site reports the directive carried out, with a note (acknowledges it too)."""
        if len(note) > 4000:
            raise Invalid("note: at most 4000 characters", code="bad_note")
        return await self._site_action(actor, directive_id, complete=True, note=note.strip())

    async def _site_action(
        self, actor: Actor, directive_id: int, *, complete: bool, note: str
    ) -> JsonObject:
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
                out.append((site_state(rec), rec.province_id, changed))
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
