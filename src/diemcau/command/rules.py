"""Alert rules: when a condition holds, an alert is active; when it stops, it clears.

- ``indicator_threshold`` / ``indicator_rising``: on every filing or correction
  (a report listener), per site and indicator, from the schema's
  ``alert_above`` and ``alert_rise_pct``; a site's next report decides whether
  the alert stays (a report for an older period never clears a newer alert).
- ``site_offline_in_meeting``: on every presence transition (a hub listener):
  a site that drops while it follows a live meeting's stream; cleared when it
  is back or the meeting ends.
- ``report_overdue``: periodically, per schema in use, period and province,
  once the period's deadline has passed and sites have not filed.
- ``directive_overdue``: periodically, per directive past its deadline with
  sites that have not completed it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date

from sqlalchemy import func, select

from diemcau.actors import Actor
from diemcau.command.aggregation import province_labels
from diemcau.command.alerts import AlertService, AlertSpec, Severity
from diemcau.command.directives import DirectiveService
from diemcau.command.models import Report
from diemcau.command.ports import LiveMeetings, PresenceChange, PresenceView
from diemcau.command.report_views import ReportView
from diemcau.command.reports import ReportChange, ReportService
from diemcau.command.schemas import Indicator, IndicatorSchema, SchemaRegistry
from diemcau.command.timeutil import Clock, now_from
from diemcau.directory.sites import SiteDirectory
from diemcau.store import Database

__all__ = ["AlertRules"]

log = logging.getLogger(__name__)

# How many past periods the overdue rule re-checks each round.
OVERDUE_LOOKBACK = 3
# Seconds a list of live meetings is reused.
LIVE_CACHE_S = 2.0
# A schema is "in use" when it has a report within this many periods.
IN_USE_PERIODS = 14
# Offline reasons that are not a site dropping out: it said goodbye, or this server is
# stopping (every session is closed by the server itself; the sites are fine).
NOT_A_DROP = frozenset({"left", "server_shutdown"})


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _report_alert(
    schema: IndicatorSchema,
    ind: Indicator,
    r: ReportView,
    messages: tuple[str, str],
    severity: Severity,
    facts: Mapping[str, object],
) -> AlertSpec:
    """An indicator alert about one site's report (Vietnamese and English messages);
    its details name the schema, indicator, period and report around the rule's `facts`."""
    return AlertSpec(
        *messages,
        severity,
        province_id=r.province_id,
        site_id=r.site_id,
        details={
            "schema": schema.key,
            "indicator": ind.key,
            "period": r.period.isoformat(),
            **facts,
            "report_id": r.id,
        },
    )


class AlertRules:
    """Evaluates the built-in rules and keeps their alerts in step with reality.

    Args:
        presence: who is online and which streams a site follows (None: no hub).
        meetings_live: the ids of live meetings (None: no meetings service).
        sites: the directory's sites (codes in alert messages).
    """

    def __init__(
        self,
        db: Database,
        clock: Clock,
        schemas: SchemaRegistry,
        alerts: AlertService,
        reports: ReportService,
        directives: DirectiveService,
        presence: PresenceView | None = None,
        meetings_live: LiveMeetings | None = None,
        sites: SiteDirectory | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.schemas = schemas
        self.alerts = alerts
        self.reports = reports
        self.directives = directives
        self._presence = presence
        self._meetings_live = meetings_live
        self.sites = sites if sites is not None else SiteDirectory(db)
        self._live_cache: tuple[float, set[int]] | None = None

    async def _site_code(self, site_id: int) -> str:
        site = await self.sites.get(site_id, reload_missing=True)
        return site.code if site is not None else str(site_id)

    # --- indicators (on every filing) ----------------------------------------------------

    async def on_report(self, change: ReportChange) -> None:
        report = change.report
        schema = self.schemas.get(report.schema)
        for ind in schema.indicators:
            if ind.alert_above is not None:
                await self._threshold(schema, ind, change)
            if ind.alert_rise_pct is not None:
                await self._rising(schema, ind, change)

    async def _superseded(self, kind: str, key: str, period: date) -> bool:
        """True when the active alert was raised from a newer period than `period`."""
        view = await self.alerts.is_active(kind, key)
        if view is None:
            return False
        return str(view.details.get("period", "")) > period.isoformat()

    async def _threshold(
        self, schema: IndicatorSchema, ind: Indicator, change: ReportChange
    ) -> None:
        r = change.report
        kind, key = "indicator_threshold", f"{schema.key}:{ind.key}:site:{r.site_id}"
        if await self._superseded(kind, key, r.period):
            return
        value = _num(r.values.get(ind.key))
        limit = ind.alert_above
        assert limit is not None
        if value is None or value <= limit:
            await self.alerts.clear_alert(kind, key)
            return
        code = await self._site_code(r.site_id)
        shown = int(value) if ind.type == "int" else value
        messages = (
            f"{code}: {ind.label_vi} = {shown} (ngưỡng {limit:g}) ngày {r.period}",
            f"{code}: {ind.label_en} = {shown} (threshold {limit:g}) on {r.period}",
        )
        facts = {"value": value, "threshold": limit}
        spec = _report_alert(schema, ind, r, messages, "critical", facts)
        await self.alerts.raise_spec(kind, key, spec)

    async def _rising(self, schema: IndicatorSchema, ind: Indicator, change: ReportChange) -> None:
        r = change.report
        kind, key = "indicator_rising", f"{schema.key}:{ind.key}:site:{r.site_id}"
        if await self._superseded(kind, key, r.period):
            return
        pct = ind.alert_rise_pct
        assert pct is not None
        value = _num(r.values.get(ind.key))
        if value is None or value < ind.alert_rise_min or value <= 0:
            await self.alerts.clear_alert(kind, key)
            return
        before = await self.reports.previous_values(schema.key, r.site_id, r.period)
        prev = _num(before.get(ind.key)) if before else None
        if prev is None:
            await self.alerts.clear_alert(kind, key)
            return
        rising = value >= prev * (1 + pct / 100) if prev > 0 else True
        if not rising:
            await self.alerts.clear_alert(kind, key)
            return
        code = await self._site_code(r.site_id)
        growth = f"+{(value / prev - 1) * 100:.0f}%" if prev > 0 else "từ 0 / from 0"
        messages = (
            f"{code}: {ind.label_vi} tăng nhanh {prev:g} → {value:g} ({growth}) ngày {r.period}",
            f"{code}: {ind.label_en} rising fast {prev:g} → {value:g} ({growth}) on {r.period}",
        )
        facts = {"value": value, "previous": prev, "rise_pct": pct}
        spec = _report_alert(schema, ind, r, messages, "warning", facts)
        await self.alerts.raise_spec(kind, key, spec)

    # --- presence (on every transition) ---------------------------------------------------

    async def on_presence(self, change: PresenceChange) -> None:
        """Raise on an involuntary drop in a live meeting; clear when the site is back.

        Cheap per transition, since a mass reconnect is thousands of them within a
        second: coming back reads only the site's own alerts (an index in memory), and a
        site that said goodbye or a server that is stopping raises nothing (no store work).
        """
        kind = "site_offline_in_meeting"
        if change.new != "offline":
            for view in await self.alerts.active_for_site(kind, change.site_id):
                await self.alerts.clear_alert(kind, view.key)
            return
        hub = self._presence
        if hub is None or change.reason in NOT_A_DROP:
            return
        meetings = [
            int(name.split(":", 1)[1])
            for name in hub.streams_of(change.site_id)
            if name.startswith("meeting:") and name.split(":", 1)[1].isdigit()
        ]
        if not meetings:
            return
        live = await self._live_meetings()
        code = await self._site_code(change.site_id)
        for meeting_id in meetings:
            if live is not None and meeting_id not in live:
                continue
            await self.alerts.raise_alert(
                kind,
                f"{meeting_id}:site:{change.site_id}",
                message_vi=f"Điểm cầu {code} mất kết nối trong cuộc họp #{meeting_id}",
                message_en=f"Site {code} went offline during meeting #{meeting_id}",
                severity="warning",
                province_id=change.province_id,
                site_id=change.site_id,
                details={"meeting_id": meeting_id, "site_code": code},
            )

    async def _live_meetings(self) -> set[int] | None:
        """Ids of live meetings, cached briefly: a mass drop asks once, not per site."""
        if self._meetings_live is None:
            return None
        now = self.clock()
        if self._live_cache is not None and now - self._live_cache[0] < LIVE_CACHE_S:
            return self._live_cache[1]
        try:
            live = {int(i) for i in await self._meetings_live()}
        except Exception:
            log.exception("could not list live meetings")
            return None
        self._live_cache = (now, live)
        return live

    async def evaluate_meetings(self) -> int:
        """Clear offline-in-meeting alerts of sites back online or meetings ended."""
        kind = "site_offline_in_meeting"
        active = await self.alerts.active(kind)
        if not active:
            return 0
        self._live_cache = None
        live = await self._live_meetings()
        hub = self._presence
        cleared = 0
        for view in active:
            raw = view.details.get("meeting_id")
            # Written as an int by the rule above; anything else names no meeting.
            meeting_id = raw if isinstance(raw, int) else 0
            back = hub is not None and view.site_id is not None and hub.is_online(view.site_id)
            ended = live is not None and meeting_id not in live
            if back or ended:
                if await self.alerts.clear_alert(kind, view.key) is not None:
                    cleared += 1
        return cleared

    # --- periodic --------------------------------------------------------------------------

    async def schemas_in_use(self) -> list[IndicatorSchema]:
        now = now_from(self.clock)
        out = []
        async with self.db.session() as s:
            for schema in self.schemas.all():
                since = schema.period_of(now) - schema.period_length() * IN_USE_PERIODS
                n = await s.scalar(
                    select(func.count())
                    .select_from(Report)
                    .where(Report.schema_key == schema.key, Report.period >= since)
                )
                if n:
                    out.append(schema)
        return out

    async def evaluate_overdue_reports(self) -> int:
        """Raise/clear ``report_overdue`` per province for recent periods past deadline."""
        kind = "report_overdue"
        now = now_from(self.clock)
        raised = 0
        for schema in await self.schemas_in_use():
            period = schema.period_of(now)
            checked = 0
            while checked < OVERDUE_LOOKBACK:
                period = period - schema.period_length()
                if schema.deadline(period) > now:
                    continue
                checked += 1
                status = await self.reports.filing_status(
                    Actor.system(), schema.key, period, list_limit=0
                )
                labels = await province_labels(self.db, [p.province_id for p in status.provinces])
                wanted: dict[str, AlertSpec] = {}
                for p in status.provinces:
                    if p.missing <= 0:
                        continue
                    label = labels.get(p.province_id) if p.province_id else None
                    name = label.name if label else "—"
                    wanted[f"{schema.key}:{period}:province:{p.province_id or 0}"] = AlertSpec(
                        message_vi=f"{name}: {p.missing}/{p.expected} điểm cầu chưa gửi "
                        f"{schema.label_vi} kỳ {period}",
                        message_en=f"{name}: {p.missing} of {p.expected} sites have not filed "
                        f"the {schema.label_en} for {period}",
                        severity="warning",
                        province_id=p.province_id,
                        details={"schema": schema.key, "period": period.isoformat(), **p.public()},
                    )
                await self.alerts.sync(kind, wanted, prefix=f"{schema.key}:{period}:")
                raised += len(wanted)
        return raised

    async def evaluate_overdue_directives(self) -> int:
        kind = "directive_overdue"
        wanted: dict[str, AlertSpec] = {}
        for view in await self.directives.overdue(Actor.system(), limit=500):
            missing = view.recipients - view.completed
            wanted[str(view.id)] = AlertSpec(
                message_vi=f"Chỉ đạo “{view.title}” quá hạn: {missing}/{view.recipients} "
                "điểm cầu chưa hoàn thành",
                message_en=f"Directive “{view.title}” is overdue: {missing} of "
                f"{view.recipients} sites have not completed it",
                severity="critical" if view.priority in ("high", "urgent") else "warning",
                province_id=view.issuer_province_id,
                details={
                    "directive_id": view.id,
                    "recipients": view.recipients,
                    "completed": view.completed,
                    "acknowledged": view.acknowledged,
                    "deadline": view.deadline.isoformat() if view.deadline else None,
                },
            )
        await self.alerts.sync(kind, wanted)
        return len(wanted)

    async def run_once(self) -> None:
        """One round of the periodic rules (each isolated: one failing does not stop others)."""
        for step in (
            self.evaluate_overdue_reports,
            self.evaluate_overdue_directives,
            self.evaluate_meetings,
        ):
            try:
                await step()
            except Exception:
                log.exception("alert rule %s failed", step.__name__)
