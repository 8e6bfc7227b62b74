"""The command center as one service of the control server.

`CommandCenter` builds the command services together (schemas, reports,
aggregation, directives, alerts and their rules, and the tables the staff pages
show: attachments, audiences, tracking, completeness, rankings, series, the alert
board), connects them to each other,
registers the site requests it answers on the presence hub (`command.messages`),
hears presence transitions for the offline-during-meeting rule, and runs the
periodic rules while the app runs. The hub and the live meetings come in through
the ports of `command.ports`; without them (tests, tools) it works on its own.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Collection

from diemcau.command.aggregation import Aggregator
from diemcau.command.alert_board import AlertBoard
from diemcau.command.alerts import AlertService
from diemcau.command.audience import Audience
from diemcau.command.completeness import Completeness
from diemcau.command.directives import DirectiveService
from diemcau.command.exports import Exporter
from diemcau.command.files import DirectiveFiles
from diemcau.command.messages import SiteRequests
from diemcau.command.ports import CommandHub, GroupSites, LiveMeetings
from diemcau.command.rankings import Rankings
from diemcau.command.reports import ReportChange, ReportService
from diemcau.command.rules import AlertRules
from diemcau.command.schema_store import SchemaStore
from diemcau.command.schemas import SchemaRegistry
from diemcau.command.series_tables import SeriesTables
from diemcau.command.timeutil import Clock
from diemcau.command.tracking import DirectiveBoard
from diemcau.directory.sites import SiteDirectory
from diemcau.errors import NotFound
from diemcau.security import Key
from diemcau.store import Database
from diemcau.tasks import Periodic, log_step_failure

__all__ = ["DEFAULT_TICK_S", "CommandCenter"]

log = logging.getLogger(__name__)

# Seconds between rounds of the periodic alert rules.
DEFAULT_TICK_S = 60.0
# How often directives the hub refused (a store outage) are offered again.
REDELIVER_S = 2.0


async def _no_groups(group_id: int) -> Collection[int]:
    raise NotFound(f"no site group {group_id} (no meetings service)", code="no_group")


class CommandCenter:
    """The command center's services, built together and started with the app.

    Args:
        db: the store.
        clock: wall clock in seconds (tests pass a fake one).
        schemas: the indicator schemas reports are filed against.
        hub: the presence hub (site delivery, staff stream, site requests).
        live_meetings: the ids of the meetings running now.
        group_sites: the sites of a saved site group (directive audiences).
        key: the link keys (sign directive attachments' download links); a random
            key of this process when None (links then die with it).
        sites: the directory's sites (one read model shared by the whole server).
        tick_s: seconds between rounds of the periodic rules (0: none).
    """

    def __init__(
        self,
        db: Database,
        clock: Clock,
        schemas: SchemaRegistry,
        *,
        hub: CommandHub | None = None,
        live_meetings: LiveMeetings | None = None,
        group_sites: GroupSites | None = None,
        key: Key | None = None,
        sites: SiteDirectory | None = None,
        tick_s: float = DEFAULT_TICK_S,
    ) -> None:
        sites = sites if sites is not None else SiteDirectory(db)
        self.db = db
        self.clock = clock
        self.schemas = schemas
        self.hub = hub
        self.tick_s = tick_s
        self.alerts = AlertService(db, clock, hub)
        self.reports = ReportService(db, schemas, clock, sites)
        self.aggregator = Aggregator(db, schemas, sites)
        self.directives = DirectiveService(db, clock, hub, self.alerts, sites)
        self.exports = Exporter(self.aggregator, self.reports, sites)
        # Schemas an administrator added at run time (loaded again at every start).
        self.custom_schemas = SchemaStore(db, schemas, clock)
        # What the staff pages show, built over the services above.
        self.files = DirectiveFiles(db, key or secrets.token_bytes(32), clock)
        self.audience = Audience(db, sites, group_sites or _no_groups)
        self.board = DirectiveBoard(db, self.directives, sites)
        self.completeness = Completeness(db, self.reports, self.aggregator, sites)
        self.rankings = Rankings(db, schemas, self.aggregator, sites)
        self.series = SeriesTables(self.aggregator, self.reports)
        self.alert_board = AlertBoard(db, self.alerts, sites)
        self.rules = AlertRules(
            db,
            clock,
            schemas,
            self.alerts,
            self.reports,
            self.directives,
            presence=hub,
            meetings_live=live_meetings,
            sites=sites,
        )
        self.reports.add_listener(self.rules.on_report)
        self.reports.add_listener(self._report_event)
        self._rules_loop = Periodic(
            "command-rules", tick_s, self.rules.run_once, what="command alert rules", first=0
        )
        self._redelivery = Periodic(
            "command-redelivery",
            REDELIVER_S,
            self.directives.redeliver,
            what="directive redelivery",
        )
        self._registered = False

    async def _report_event(self, change: ReportChange) -> None:
        if self.hub is None:
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
            await self.hub.publish_staff_event("report.filed", body, province_id=r.province_id)
        except Exception:
            log.exception("could not publish report.filed")

    def register(self) -> None:
        """Answer the site requests and hear presence transitions on the hub (once)."""
        if self.hub is None or self._registered:
            return
        for kind, handler in SiteRequests(self.reports, self.directives).handlers().items():
            self.hub.on_message(kind, handler)
        self.hub.add_listener(self.rules.on_presence)
        self._registered = True

    async def start(self) -> None:
        """Load active alerts, redeliver directives the hub never took (and keep doing so
        every `REDELIVER_S` after a failed delivery), start the rules."""
        self.register()
        await self.custom_schemas.load()
        await self.alerts.active()
        try:
            await self.directives.deliver_pending()
        except Exception as exc:
            self.directives.retry_later()
            log_step_failure(log, "redelivery of pending directives (retried)", exc)
        self._redelivery.start()
        self._rules_loop.start()

    async def stop(self) -> None:
        """End the loops: between rounds at once, during one once it is written."""
        await self._rules_loop.stop()
        await self._redelivery.stop()
