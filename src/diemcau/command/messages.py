"""The site requests the command center answers over the site session.

A site files and lists its reports (``report.submit``, ``report.mine``) and
acknowledges, completes and lists its directives (``directive.ack``,
``directive.complete``, ``directive.inbox``) on its live session; each handler checks
the body's shape and calls the same service method the HTTP API calls, acting as the
site itself (docs/protocol.md, docs/command.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from diemcau.accounts.actors import actor_of
from diemcau.accounts.service import SitePrincipal
from diemcau.command.directives import DirectiveService
from diemcau.command.ports import SiteMessageHandler
from diemcau.command.reports import ReportService, parse_period
from diemcau.errors import Invalid
from diemcau.records import JsonObject

__all__ = ["SiteRequests"]


def _int(body: Mapping[str, object], name: str) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise Invalid(f"{name}: must be an integer", code="bad_request")
    return value


class SiteRequests:
    """Handlers of the command center's site requests, by message kind."""

    def __init__(self, reports: ReportService, directives: DirectiveService) -> None:
        self.reports = reports
        self.directives = directives

    def handlers(self) -> dict[str, SiteMessageHandler]:
        return {
            "report.submit": self.report_submit,
            "report.mine": self.report_mine,
            "directive.ack": self.directive_ack,
            "directive.complete": self.directive_complete,
            "directive.inbox": self.directive_inbox,
        }

    async def report_submit(
        self, principal: SitePrincipal, body: Mapping[str, object]
    ) -> JsonObject:
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
        # Refused, not dropped; its length is checked by the service on every path.
        if not isinstance(note, str):
            raise Invalid("note: must be text", code="bad_note")
        view = await self.reports.submit(
            actor_of(principal),
            schema,
            values,
            period=period,
            source="site",
            note=note,
        )
        return view.public()

    async def report_mine(self, principal: SitePrincipal, body: Mapping[str, object]) -> JsonObject:
        schema = body.get("schema")
        if not isinstance(schema, str):
            raise Invalid("schema: must be a schema key", code="bad_request")
        rows = await self.reports.list_reports(actor_of(principal), schema, limit=60)
        return {"items": [r.public() for r in rows]}

    async def directive_ack(
        self, principal: SitePrincipal, body: Mapping[str, object]
    ) -> JsonObject:
        return await self.directives.acknowledge(actor_of(principal), _int(body, "id"))

    async def directive_complete(
        self, principal: SitePrincipal, body: Mapping[str, object]
    ) -> JsonObject:
        note = body.get("note", "")
        if not isinstance(note, str):
            raise Invalid("note: must be text", code="bad_note")
        return await self.directives.complete(actor_of(principal), _int(body, "id"), note)

    async def directive_inbox(
        self, principal: SitePrincipal, body: Mapping[str, object]
    ) -> JsonObject:
        include_done = body.get("include_done", True) is not False
        items = await self.directives.inbox(actor_of(principal), include_done=include_done)
        return {"items": items}
