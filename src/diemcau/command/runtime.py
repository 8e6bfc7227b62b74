"""Wiring: the command center as one service of the control server.

`attach` builds `CommandCenter` (schemas, reports, aggregation, directives,
alerts and their rules), registers the site messages it answers on the
presence hub (``report.submit``, ``report.mine``, ``directive.ack``,
``directive.complete``, ``directive.inbox``), listens to presence transitions
for the offline-during-meeting rule, and runs the periodic rules while the
app runs. Every collaborator is looked up when used, so the command center
works without a hub or a meeting service (tests, tools).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from diemcau.command.actors import Actor
from diemcau.command.aggregation import Aggregator
from diemcau.command.alerts import AlertService
from diemcau.command.directives import AuditHook, DirectiveService
from diemcau.command.reports import ReportService, parse_period
from diemcau.command.rules import AlertRules
from diemcau.command.schema_store import SchemaStore
from diemcau.command.schemas import SchemaRegistry, builtin_registry
from diemcau.command.timeutil import Clock
from diemcau.errors import Invalid
from diemcau.runtime import Runtime
from diemcau.store import Database
from diemcau.tasks import cancel_and_wait

__all__ = ["CommandCenter", "attach", "build_center"]

log = logging.getLogger(__name__)

# Seconds between rounds of the periodic alert rules.
DEFAULT_TICK_S = 60.0


@dataclass(frozen=True)
class _AuditActor:
    """What ``meetings.audit.record_audit`` reads from a staff actor."""

    username: str
    user_id: int | None


def _audit_hook() -> AuditHook | None:
    """The shared audit log's writer, if the meetings package provides it."""
    try:
        module = importlib.import_module("diemcau.meetings.audit")
    except ImportError:
        return None
    record = getattr(module, "record_audit", None)
    if record is None:
        return None

    async def hook(
        s: AsyncSession, actor: Actor, action: str, target: str, details: Mapping[str, Any]
    ) -> None:
        who: object = (
            _AuditActor(actor.name, actor.user_id)
            if actor.label.startswith("staff:")
            else actor.label
        )
        await record(s, who, action, target=target, details=dict(details))

    return hook


class CommandCenter:
    """The command center's services, built together and started with the app."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        schemas: SchemaRegistry,
        *,
        services: Mapping[str, Any] | None = None,
        audit: AuditHook | None = None,
        tick_s: float = DEFAULT_TICK_S,
    ) -> None:
        # The runtime's service map, read at use time (the hub may attach later).
        self._services: Mapping[str, Any] = services if services is not None else {}
        self.db = db
        self.clock = clock
        self.schemas = schemas
        self.tick_s = tick_s
        self.alerts = AlertService(db, clock, lambda: self._services.get("presence"))
        self.reports = ReportService(db, schemas, clock)
        # Schemas an administrator added at run time (loaded again at every start).
        self.custom_schemas = SchemaStore(db, schemas, clock)
        self.aggregator = Aggregator(db, schemas)
        self.directives = DirectiveService(
            db, clock, lambda: self._services.get("presence"), self.alerts, audit
        )
        self.rules = AlertRules(
            db,
            clock,
            schemas,
            self.alerts,
            self.reports,
            self.directives,
            presence=lambda: self._services.get("presence"),
            meetings_live=self._live_meetings,
        )
        self.reports.add_listener(self.rules.on_report)
        self.reports.add_listener(self._report_event)
        self._task: asyncio.Task[None] | None = None
        self._hub_wired = False

    async def _live_meetings(self) -> list[int]:
        meetings = self._services.get("meetings")
        if meetings is None:
            return []
        return [m.id for m in await meetings.store.list_meetings(state="live")]

    async def _report_event(self, change: Any) -> None:
        hub = self._services.get("presence")
        if hub is None:
            return
        r = change.report
        body = {
            "id": r.id,
            "schema": r.schema,
            "period": r.period.isoformat(),
            "site_id": r.site_id,
            "province_id": r.province_id,
            "revision": r.revision,
            "late": r.late,
            "correction": change.previous is not None,
        }
        try:
            await hub.publish_staff_event("report.filed", body, province_id=r.province_id)
        except Exception:
            log.exception("could not publish report.filed")

    # --- hub wiring -------------------------------------------------------------------------

    def wire_hub(self, hub: Any) -> None:
        """Register the site messages and the presence listener on the hub (once)."""
        if self._hub_wired:
            return
        hub.on_message("report.submit", self._msg_report_submit)
        hub.on_message("report.mine", self._msg_report_mine)
        hub.on_message("directive.ack", self._msg_directive_ack)
        hub.on_message("directive.complete", self._msg_directive_complete)
        hub.on_message("directive.inbox", self._msg_directive_inbox)
        hub.add_listener(self.rules.on_presence)
        self._hub_wired = True

    @staticmethod
    def _site(principal: Any) -> Actor:
        return Actor.for_site(int(principal.site_id), str(principal.code))

    @staticmethod
    def _int(body: Mapping[str, Any], name: str) -> int:
        value = body.get(name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise Invalid(f"{name}: must be an integer", code="bad_request")
        return value

    async def _msg_report_submit(
        self, principal: Any, body: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        schema = body.get("schema")
        if not isinstance(schema, str):
            raise Invalid("schema: must be a schema key", code="bad_request")
        period_text = body.get("period")
        period: date | None = None
        if period_text is not None:
            if not isinstance(period_text, str):
                raise Invalid("period: must be a date YYYY-MM-DD", code="bad_period")
            period = parse_period(period_text)
        values = body.get("values")
        if not isinstance(values, Mapping):
            raise Invalid("values: must be an object of indicator values", code="bad_value")
        note = body.get("note", "")
        view = await self.reports.submit(
            self._site(principal),
            schema,
            values,
            period=period,
            source="site",
            note=note if isinstance(note, str) else "",
        )
        return view.public()

    async def _msg_report_mine(self, principal: Any, body: Mapping[str, Any]) -> Mapping[str, Any]:
        schema = body.get("schema")
        if not isinstance(schema, str):
            raise Invalid("schema: must be a schema key", code="bad_request")
        rows = await self.reports.list_reports(self._site(principal), schema, limit=60)
        return {"items": [r.public() for r in rows]}

    async def _msg_directive_ack(
        self, principal: Any, body: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        return await self.directives.acknowledge(self._site(principal), self._int(body, "id"))

    async def _msg_directive_complete(
        self, principal: Any, body: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        note = body.get("note", "")
        if not isinstance(note, str):
            raise Invalid("note: must be text", code="bad_note")
        return await self.directives.complete(self._site(principal), self._int(body, "id"), note)

    async def _msg_directive_inbox(
        self, principal: Any, body: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        include_done = body.get("include_done", True) is not False
        items = await self.directives.inbox(self._site(principal), include_done=include_done)
        return {"items": items}

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        hub = self._services.get("presence")
        if hub is not None:
            self.wire_hub(hub)
        await self.custom_schemas.load()
        await self.alerts.active()
        try:
            await self.directives.deliver_pending()
        except Exception:
            log.exception("could not redeliver pending directives")
        if self.tick_s > 0:
            self._task = asyncio.create_task(self._periodic(), name="command-rules")

    async def _periodic(self) -> None:
        while True:
            await self.rules.run_once()
            await asyncio.sleep(self.tick_s)

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None


def build_center(runtime: Runtime) -> CommandCenter:
    """The command center over `runtime` (extra schemas from ``DIEMCAU_SCHEMAS_DIR``)."""
    schemas = builtin_registry()
    extra = os.environ.get("DIEMCAU_SCHEMAS_DIR", "").strip()
    if extra:
        schemas.load_dir(Path(extra))
    tick = float(os.environ.get("DIEMCAU_COMMAND_TICK_S", "") or DEFAULT_TICK_S)
    return CommandCenter(
        runtime.db,
        runtime.clock,
        schemas,
        services=runtime.services,
        audit=_audit_hook(),
        tick_s=tick,
    )


async def attach(runtime: Runtime) -> None:
    """Add ``runtime.services["command"]`` (after presence and meetings)."""
    center = build_center(runtime)
    hub = runtime.services.get("presence")
    if hub is not None:
        center.wire_hub(hub)
    runtime.add_service("command", center, center.start, center.stop)
