"""Reading situation reports: one report, its history, lists, who is late or missing.

Every read is scoped by the caller's `Actor` (a site: its own reports; a province
officer: its province). Nothing here writes (docs/command.md, "Situation reports").
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from diemcau.actors import Actor
from diemcau.command.models import Report, ReportRevision
from diemcau.command.report_views import (
    FilingStatus,
    LateSite,
    ProvinceFiling,
    ReportView,
    RevisionView,
    SiteRef,
    report_view,
)
from diemcau.command.schemas import SchemaRegistry
from diemcau.command.timeutil import Clock, aware, now_from
from diemcau.directory.sites import SiteDirectory
from diemcau.errors import Forbidden, NotFound
from diemcau.records import iso
from diemcau.store import Database

__all__ = ["ReportReads"]


class ReportReads:
    """The read side of the report service (its writes extend it).

    Args:
        db: the store.
        schemas: the indicator schemas.
        clock: wall clock (what is late is decided by it).
        sites: the directory's sites (who is expected to file).
    """

    def __init__(
        self, db: Database, schemas: SchemaRegistry, clock: Clock, sites: SiteDirectory
    ) -> None:
        self.db = db
        self.schemas = schemas
        self.clock = clock
        self.sites = sites

    async def get(self, actor: Actor, report_id: int) -> ReportView:
        async with self.db.session() as s:
            row = await s.get(Report, report_id)
        if row is None:
            raise NotFound(f"report {report_id} does not exist", code="no_report")
        actor.check_site(row.site_id, row.province_id)
        return report_view(row)

    async def history(self, actor: Actor, report_id: int) -> list[RevisionView]:
        """Every revision of a report, oldest first (revision 1 is the first filing)."""
        await self.get(actor, report_id)
        async with self.db.session() as s:
            rows = (
                await s.scalars(
                    select(ReportRevision)
                    .where(ReportRevision.report_id == report_id)
                    .order_by(ReportRevision.revision)
                )
            ).all()
        return [
            RevisionView(
                revision=r.revision,
                values=dict(r.values),
                changes=dict(r.changes),
                source=r.source,
                changed_by=r.changed_by,
                changed_at=aware(r.changed_at),
                note=r.note,
            )
            for r in rows
        ]

    async def list_reports(
        self,
        actor: Actor,
        schema_key: str,
        *,
        start: date | None = None,
        end: date | None = None,
        site_id: int | None = None,
        province_id: int | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[ReportView]:
        """Reports in the actor's reach: a site sees only its own, an officer its province."""
        self.schemas.get(schema_key)
        q = select(Report).where(Report.schema_key == schema_key)
        if actor.site_id is not None:
            if site_id is not None and site_id != actor.site_id:
                raise Forbidden("a site may only access its own reports", code="not_own")
            site_id = actor.site_id
        elif not actor.staff:
            raise Forbidden("only sites and staff read reports", code="forbidden")
        else:
            scope = actor.scope(province_id)
            if scope is not None:
                q = q.where(Report.province_id == scope)
        if site_id is not None:
            q = q.where(Report.site_id == site_id)
        if start is not None:
            q = q.where(Report.period >= start)
        if end is not None:
            q = q.where(Report.period <= end)
        q = q.order_by(Report.period.desc(), Report.site_id).limit(limit).offset(offset)
        async with self.db.session() as s:
            rows = (await s.scalars(q)).all()
        return [report_view(r) for r in rows]

    async def filing_status(
        self,
        actor: Actor,
        schema_key: str,
        period: date,
        *,
        province_id: int | None = None,
        list_limit: int = 500,
    ) -> FilingStatus:
        """Per province: sites expected to file, filed, late, missing; and who is missing."""
        actor.require_staff("see who has filed")
        schema = self.schemas.get(schema_key)
        period = schema.normalise_period(period)
        scope = actor.scope(province_id)
        now = now_from(self.clock)
        filed_q = select(Report.site_id, Report.late, Report.submitted_at).where(
            Report.schema_key == schema.key, Report.period == period
        )
        if scope is not None:
            filed_q = filed_q.where(Report.province_id == scope)
        await self.sites.refresh_if_changed()
        kinds = set(schema.reporting_kinds)
        sites = sorted(
            (
                site
                for site in await self.sites.all()
                if site.kind in kinds and (scope is None or site.province_id == scope)
            ),
            key=lambda site: (site.province_id is None, site.province_id or 0, site.code),
        )
        async with self.db.session() as s:
            filed = {r.site_id: r for r in (await s.execute(filed_q)).all()}
        per: dict[int | None, ProvinceFiling] = {}
        missing: list[SiteRef] = []
        late: list[LateSite] = []
        for site in sites:
            pf = per.setdefault(site.province_id, ProvinceFiling(site.province_id))
            pf.expected += 1
            rep = filed.get(site.id)
            info: SiteRef = {
                "site_id": site.id,
                "code": site.code,
                "name": site.name,
                "province_id": site.province_id,
            }
            if rep is None:
                if len(missing) < list_limit:
                    missing.append(info)
                continue
            pf.filed += 1
            if rep.late:
                pf.late += 1
                if len(late) < list_limit:
                    late.append({**info, "submitted_at": iso(aware(rep.submitted_at))})
        deadline = schema.deadline(period)
        return FilingStatus(
            schema=schema.key,
            period=period,
            deadline=deadline,
            overdue=now > deadline,
            provinces=sorted(per.values(), key=lambda p: (p.province_id is None, p.province_id)),
            missing_sites=missing,
            late_sites=late,
        )

    async def count_reports(self, schema_key: str, period: date) -> int:
        async with self.db.session() as s:
            n = await s.scalar(
                select(func.count())
                .select_from(Report)
                .where(Report.schema_key == schema_key, Report.period == period)
            )
        return int(n or 0)
