"""The alerts feed: raise, refresh, clear and acknowledge named conditions.

An alert names a condition by ``(kind, key)`` — e.g. ``report_overdue`` /
``covid19:2026-11-25:province:12``. Raising an active condition again only
refreshes it; clearing it closes it; a later raise opens a new alert. Every
change is one action that persists and then publishes a staff event
(``alert.raised``, ``alert.cleared``, ``alert.acknowledged``), scoped to the
alert's province so a province officer hears only its own and national ones.

`raise_alert` / `clear_alert` are the entry points for other packages (the
media layer calls ``raise_alert("media_node_degraded", node_id, ...)``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from diemcau.actors import Actor
from diemcau.alerting import Severity
from diemcau.command.models import Alert
from diemcau.command.ports import StaffEvents
from diemcau.command.timeutil import Clock, aware, now_from
from diemcau.command.writes import writing
from diemcau.errors import Forbidden, Invalid, NotFound
from diemcau.records import JsonObject, iso
from diemcau.store import Database

__all__ = [
    "KINDS",
    "AlertService",
    "AlertSpec",
    "AlertView",
    "Severity",
]

log = logging.getLogger(__name__)

# Kinds raised by diemcau itself; other packages may use their own.
KINDS = (
    "site_offline_in_meeting",
    "report_overdue",
    "indicator_threshold",
    "indicator_rising",
    "directive_overdue",
    "directive_escalated",
    "media_node_degraded",
)


@dataclass(frozen=True)
class AlertSpec:
    """What a rule wants raised for one condition."""

    message_vi: str
    message_en: str
    severity: Severity = "warning"
    province_id: int | None = None
    site_id: int | None = None
    details: Mapping[str, object] | None = None


@dataclass(frozen=True)
class AlertView:
    id: int
    kind: str
    key: str
    severity: str
    province_id: int | None
    site_id: int | None
    message_vi: str
    message_en: str
    details: dict[str, object]
    raised_at: datetime
    last_seen_at: datetime
    cleared_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    acknowledge_note: str | None = None

    @property
    def active(self) -> bool:
        return self.cleared_at is None

    def public(self) -> JsonObject:
        return {
            "id": self.id,
            "kind": self.kind,
            "key": self.key,
            "severity": self.severity,
            "province_id": self.province_id,
            "site_id": self.site_id,
            "message_vi": self.message_vi,
            "message_en": self.message_en,
            "details": self.details,
            "raised_at": iso(self.raised_at),
            "last_seen_at": iso(self.last_seen_at),
            "cleared_at": iso(self.cleared_at),
            "active": self.active,
            "acknowledged_at": iso(self.acknowledged_at),
            "acknowledged_by": self.acknowledged_by,
            "acknowledge_note": self.acknowledge_note,
        }


def _view(row: Alert) -> AlertView:
    return AlertView(
        id=row.id,
        kind=row.kind,
        key=row.key,
        severity=row.severity,
        province_id=row.province_id,
        site_id=row.site_id,
        message_vi=row.message_vi,
        message_en=row.message_en,
        details=dict(row.details or {}),
        raised_at=aware(row.raised_at),
        last_seen_at=aware(row.last_seen_at),
        cleared_at=aware(row.cleared_at) if row.cleared_at else None,
        acknowledged_at=aware(row.acknowledged_at) if row.acknowledged_at else None,
        acknowledged_by=row.acknowledged_by,
        acknowledge_note=row.acknowledge_note,
    )


class AlertService:
    """Persists alerts and tells staff about them.

    Keeps the set of active conditions in memory (loaded once from the store)
    so rules that run on every report can tell "nothing to do" without a query.

    Args:
        db: the store.
        clock: wall clock (injected in tests).
        events: where staff hear of raised, cleared and acknowledged alerts (None: nowhere).
    """

    def __init__(self, db: Database, clock: Clock, events: StaffEvents | None = None) -> None:
        self.db = db
        self.clock = clock
        self._events = events
        self._active: dict[tuple[str, str], AlertView] | None = None
        # (kind, site id) -> keys of that site's active alerts of that kind: a site coming
        # back online finds its own alerts without reading everyone's (a mass reconnect).
        self._by_site: dict[tuple[str, int], set[str]] = {}

    async def _publish(self, kind: str, view: AlertView) -> None:
        sink = self._events
        if sink is None:
            return
        try:
            await sink.publish_staff_event(kind, view.public(), province_id=view.province_id)
        except Exception:
            log.exception("could not publish %s", kind)

    async def _load(self) -> dict[tuple[str, str], AlertView]:
        if self._active is None:
            async with self.db.session() as s:
                rows = (await s.scalars(select(Alert).where(Alert.cleared_at.is_(None)))).all()
            self._active = {}
            for r in rows:
                self._put(_view(r))
        return self._active

    def _put(self, view: AlertView) -> None:
        assert self._active is not None
        self._active[(view.kind, view.key)] = view
        if view.site_id is not None:
            self._by_site.setdefault((view.kind, view.site_id), set()).add(view.key)

    def _drop(self, kind: str, key: str) -> None:
        assert self._active is not None
        view = self._active.pop((kind, key), None)
        if view is not None and view.site_id is not None:
            keys = self._by_site.get((kind, view.site_id))
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_site[(kind, view.site_id)]

    async def active(self, kind: str | None = None) -> list[AlertView]:
        """Active alerts (from memory), optionally of one kind."""
        return [v for (k, _), v in (await self._load()).items() if kind is None or k == kind]

    async def is_active(self, kind: str, key: str) -> AlertView | None:
        return (await self._load()).get((kind, key))

    async def active_for_site(self, kind: str, site_id: int) -> list[AlertView]:
        """A site's active alerts of one kind (from an index: no scan of all alerts)."""
        active = await self._load()
        keys = self._by_site.get((kind, site_id), ())
        return [active[(kind, key)] for key in sorted(keys) if (kind, key) in active]

    async def raise_alert(
        self,
        kind: str,
        key: str,
        *,
        message_vi: str,
        message_en: str,
        severity: Severity = "warning",
        province_id: int | None = None,
        site_id: int | None = None,
        details: Mapping[str, object] | None = None,
    ) -> AlertView:
        """Open the alert for condition (kind, key), or refresh it if already active.

        A refresh updates the message, severity and details and publishes
        ``alert.updated`` only when one of them changed.
        """
        if not kind or len(kind) > 48 or not key or len(key) > 200:
            raise Invalid("kind/key: 1-48 and 1-200 characters", code="bad_alert")
        if severity not in ("info", "warning", "critical"):
            raise Invalid(f"severity: '{severity}' is not info, warning or critical")
        await self._load()
        now = now_from(self.clock)
        facts = dict(details or {})
        for attempt in range(3):
            try:
                async with writing(self.db) as s:
                    row = await s.scalar(
                        select(Alert)
                        .where(Alert.kind == kind, Alert.key == key, Alert.cleared_at.is_(None))
                        .with_for_update()
                    )
                    fresh = row is None
                    changed = fresh
                    if row is None:
                        row = Alert(
                            kind=kind,
                            key=key,
                            severity=severity,
                            province_id=province_id,
                            site_id=site_id,
                            message_vi=message_vi,
                            message_en=message_en,
                            details=facts,
                            raised_at=now,
                            last_seen_at=now,
                        )
                        s.add(row)
                    else:
                        changed = (
                            row.severity != severity
                            or row.message_vi != message_vi
                            or dict(row.details or {}) != facts
                        )
                        row.last_seen_at = now
                        if changed:
                            row.severity = severity
                            row.message_vi = message_vi
                            row.message_en = message_en
                            row.details = facts
                    await s.flush()
                    view = _view(row)
                break
            except IntegrityError:
                # A concurrent raiser opened it first; refresh that one instead.
                if attempt == 2:
                    raise
        self._drop(kind, key)  # its site may have changed with the refresh
        self._put(view)
        if fresh:
            await self._publish("alert.raised", view)
        elif changed:
            await self._publish("alert.updated", view)
        return view

    async def clear_alert(self, kind: str, key: str) -> AlertView | None:
        """Close the active alert for (kind, key); None if it was not active."""
        active = await self._load()
        if (kind, key) not in active:
            return None
        now = now_from(self.clock)
        async with writing(self.db) as s:
            row = await s.scalar(
                select(Alert).where(
                    Alert.kind == kind, Alert.key == key, Alert.cleared_at.is_(None)
                )
            )
            if row is not None:
                row.cleared_at = now
                await s.flush()
                view: AlertView | None = _view(row)
            else:
                view = None
        self._drop(kind, key)
        if view is not None:
            await self._publish("alert.cleared", view)
        return view

    async def raise_spec(self, kind: str, key: str, spec: AlertSpec) -> AlertView:
        """`raise_alert` with what a rule wants raised for the condition (kind, key)."""
        return await self.raise_alert(
            kind,
            key,
            message_vi=spec.message_vi,
            message_en=spec.message_en,
            severity=spec.severity,
            province_id=spec.province_id,
            site_id=spec.site_id,
            details=spec.details,
        )

    async def sync(
        self, kind: str, wanted: Mapping[str, AlertSpec], *, prefix: str = ""
    ) -> tuple[int, int]:
        """Make the active alerts of `kind` (keys starting with `prefix`) exactly `wanted`.

        Returns (raised or refreshed, cleared). Rules that evaluate a whole
        condition set at once (overdue reports, overdue directives) use this.
        """
        for key, spec in wanted.items():
            await self.raise_spec(kind, key, spec)
        cleared = 0
        for view in await self.active(kind):
            if view.key.startswith(prefix) and view.key not in wanted:
                if await self.clear_alert(kind, view.key) is not None:
                    cleared += 1
        return len(wanted), cleared

    async def acknowledge(self, actor: Actor, alert_id: int, note: str = "") -> AlertView:
        """Record who acknowledged an alert, when, and their note (the first one stands).

        A province officer sees national alerts (a media node down, a national
        directive escalated) but does not acknowledge them: that would tell the
        national staff the condition is in hand. It acknowledges its province's only.
        """
        actor.require_staff("acknowledge alerts")
        if len(note) > 2000:
            raise Invalid("note: at most 2000 characters", code="bad_note")
        now = now_from(self.clock)
        async with writing(self.db) as s:
            row = await s.get(Alert, alert_id)
            if row is None:
                raise NotFound(f"alert {alert_id} does not exist", code="no_alert")
            self._check_scope(actor, row.province_id)
            if actor.province_id is not None and row.province_id is None:
                raise Forbidden(
                    "a national alert is acknowledged by national staff, not a province officer",
                    code="national_alert",
                )
            first = row.acknowledged_at is None
            if first:
                await s.execute(
                    update(Alert)
                    .where(Alert.id == alert_id, Alert.acknowledged_at.is_(None))
                    .values(
                        acknowledged_at=now,
                        acknowledged_by=actor.label,
                        acknowledge_note=note.strip() or None,
                    )
                )
                await s.refresh(row)
            view = _view(row)
        if view.active and self._active is not None:
            self._put(view)
        if first:
            await self._publish("alert.acknowledged", view)
        return view

    @staticmethod
    def _check_scope(actor: Actor, province_id: int | None) -> None:
        if actor.province_id is not None and province_id not in (None, actor.province_id):
            raise NotFound("alert not found in your province", code="no_alert")

    async def get(self, actor: Actor, alert_id: int) -> AlertView:
        actor.require_staff("read alerts")
        async with self.db.session() as s:
            row = await s.get(Alert, alert_id)
        if row is None:
            raise NotFound(f"alert {alert_id} does not exist", code="no_alert")
        self._check_scope(actor, row.province_id)
        return _view(row)

    async def feed(
        self,
        actor: Actor,
        *,
        active: bool | None = True,
        kinds: Iterable[str] | None = None,
        province_id: int | None = None,
        unacknowledged: bool = False,
        limit: int = 200,
        before_id: int | None = None,
    ) -> list[AlertView]:
        """Newest first. A province officer sees its province's alerts and national ones."""
        actor.require_staff("read alerts")
        q = select(Alert)
        scope = actor.scope(province_id)
        if actor.province_id is not None:
            q = q.where(or_(Alert.province_id == scope, Alert.province_id.is_(None)))
        elif scope is not None:
            q = q.where(Alert.province_id == scope)
        if active is True:
            q = q.where(Alert.cleared_at.is_(None))
        elif active is False:
            q = q.where(Alert.cleared_at.is_not(None))
        wanted = list(kinds or ())
        if wanted:
            q = q.where(Alert.kind.in_(wanted))
        if unacknowledged:
            q = q.where(Alert.acknowledged_at.is_(None))
        if before_id is not None:
            q = q.where(Alert.id < before_id)
        q = q.order_by(Alert.id.desc()).limit(max(1, min(limit, 1000)))
        async with self.db.session() as s:
            rows = (await s.scalars(q)).all()
        return [_view(r) for r in rows]
