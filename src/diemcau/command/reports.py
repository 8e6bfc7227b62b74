"""Writing situation reports: filing, corrections with history, CSV import.

One report per site, schema and period. Filing again for the same period is a
correction: the report keeps its id, its revision number goes up, and a
revision row records who changed which values and when — nothing is silently
overwritten (docs/architecture.md, "Nothing is lost"). A retried identical
filing changes nothing. Reading them (lists, history, who is late or missing) is
`report_reads`, which `ReportService` extends; their shapes are `report_views`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TypeVar

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from diemcau.actors import Actor
from diemcau.command.batching import GroupCommit
from diemcau.command.models import Report, ReportRevision
from diemcau.command.report_csv import read_report_csv
from diemcau.command.report_reads import ReportReads
from diemcau.command.report_views import (
    CsvImportResult,
    FilingStatus,
    ProvinceFiling,
    ReportChange,
    ReportView,
    RevisionView,
    parse_period,
    report_view,
)
from diemcau.command.rollups import RollupRow, apply_deltas, delta_rows
from diemcau.command.schemas import IndicatorSchema, SchemaRegistry, Value
from diemcau.command.timeutil import Clock, now_from
from diemcau.command.writes import writing
from diemcau.directory.sites import SiteDirectory, SiteInfo
from diemcau.errors import Conflict, DomainError, Forbidden, Invalid, NotFound
from diemcau.store import Database

__all__ = [
    "CsvImportResult",
    "FilingStatus",
    "MAX_NOTE",
    "ProvinceFiling",
    "ReportChange",
    "ReportService",
    "ReportView",
    "RevisionView",
    "parse_period",
]

log = logging.getLogger(__name__)

ReportListener = Callable[["ReportChange"], Awaitable[None]]

# At most this many line errors are listed in one refusal of a CSV file.
_CSV_MAX_ERRORS = 50
# Longest note of a filing or correction, whatever the path (HTTP, site session, CSV).
MAX_NOTE = 2000


def _check_note(note: str) -> str:
    if len(note) > MAX_NOTE:
        raise Invalid(f"note: at most {MAX_NOTE} characters", code="bad_note")
    return note


# Attempts of one write that lost a race on a unique key.
_RETRIES = 5
_T = TypeVar("_T")


async def _retrying(work: Callable[[], Awaitable[_T]]) -> _T:
    """Run a unit of work again when a concurrent writer won a unique insert.

    Two first filings for one period race on the report's unique key, two
    corrections on the revision's; the loser's transaction rolls back whole
    and its retry reads the winner's row, so its change becomes the next
    revision instead of overwriting the other one.
    """
    attempt = 1
    while True:
        try:
            return await work()
        except IntegrityError:
            if attempt >= _RETRIES:
                raise
            attempt += 1


def _diff(old: Mapping[str, Value], new: Mapping[str, Value]) -> dict[str, list[Value | None]]:
    return {
        k: [old.get(k), new.get(k)] for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)
    }


@dataclass(frozen=True)
class _Filing:
    """One checked filing waiting to be written."""

    schema: IndicatorSchema
    site_id: int
    period: date
    values: dict[str, Value]
    actor: Actor
    source: str
    note: str
    now: datetime

    @property
    def key(self) -> tuple[str, date, int]:
        return (self.schema.key, self.period, self.site_id)


_PENDING = Conflict("filing was not processed")
_MISSING = object()
# Prior-period values kept for the rules at most (the rules take them right away).
_PRIOR_CACHE = 20_000


def _require_site(sites: Mapping[int, SiteInfo], site_id: int) -> SiteInfo:
    site = sites.get(site_id)
    if site is None:
        raise NotFound(f"site_id: site {site_id} does not exist", code="no_site")
    if site.kind == "chair":
        raise Forbidden("the chair site does not file situation reports", code="chair")
    return site


def _revision(
    report_id: int, revision: int, f: _Filing, changes: dict[str, list[Value | None]]
) -> ReportRevision:
    return ReportRevision(
        report_id=report_id,
        revision=revision,
        values=f.values,
        changes=changes,
        source=f.source,
        changed_by=f.actor.label,
        changed_at=f.now,
        note=f.note,
    )


class ReportService(ReportReads):
    """Files, corrects and lists situation reports; reports who is late or missing."""

    def __init__(
        self,
        db: Database,
        schemas: SchemaRegistry,
        clock: Clock,
        sites: SiteDirectory | None = None,
    ) -> None:
        super().__init__(db, schemas, clock, sites if sites is not None else SiteDirectory(db))
        self._listeners: list[ReportListener] = []
        self._batcher = GroupCommit(self._file_batch)
        # Prior-period values read with each batch, taken once by the rules.
        self._priors: dict[tuple[str, int, date], dict[str, Value] | None] = {}

    def add_listener(self, listener: ReportListener) -> None:
        """Call `listener` after every committed filing or correction that changed values."""
        self._listeners.append(listener)

    async def _notify(self, changes: Sequence[ReportChange]) -> None:
        # The filing is committed: a failing listener (an alert rule) is logged,
        # never reported to the site as a failed filing.
        for change in changes:
            for listener in self._listeners:
                try:
                    await listener(change)
                except Exception:
                    log.exception("report listener failed for report %s", change.report.id)

    # --- filing --------------------------------------------------------------------

    async def submit(
        self,
        actor: Actor,
        schema_key: str,
        values: Mapping[str, object],
        *,
        period: date | None = None,
        site_id: int | None = None,
        source: str = "api",
        note: str = "",
    ) -> ReportView:
        """File (or re-file, as a correction) one site's report for a period.

        Args:
            actor: a site files for itself; staff may file for a site of their scope.
            schema_key: which schema the values follow.
            values: every indicator value of the report (required ones included).
            period: the period's first day; default the period containing now.
            site_id: the site filed for; a site actor may leave it out.
            source: "site" (terminal), "api", "csv".
            note: why (kept in the revision history).
        """
        _check_note(note)
        schema = self.schemas.get(schema_key)
        checked = schema.validate_values(values)
        target = site_id if site_id is not None else actor.site_id
        if target is None:
            raise Invalid("site_id: required when staff file a report", code="no_site")
        now = now_from(self.clock)
        the_period = self._check_period(schema, period, now)
        filing = _Filing(schema, target, the_period, checked, actor, source, note, now)
        view, previous = await self._batcher.submit(filing)
        if previous is None or previous != view.values:
            await self._notify([ReportChange(view, previous, actor)])
        return view

    async def _file_batch(
        self, filings: Sequence[_Filing]
    ) -> list[tuple[ReportView, dict[str, Value] | None] | BaseException]:
        """Write a batch of filings in one transaction; on failure, each in its own.

        Sites are checked first, so a bad filing is refused alone; only an
        unexpected failure of the shared transaction (a lost insert race on
        PostgreSQL) falls back to one transaction per filing.
        """
        results: list[tuple[ReportView, dict[str, Value] | None] | BaseException] = []
        try:
            async with writing(self.db) as s:
                sites = await self._sites({f.site_id for f in filings})
                good: list[tuple[int, _Filing, SiteInfo]] = []
                results = [_PENDING] * len(filings)
                for i, f in enumerate(filings):
                    try:
                        site = _require_site(sites, f.site_id)
                        f.actor.check_site(site.id, site.province_id)
                        good.append((i, f, site))
                    except DomainError as exc:
                        results[i] = exc
                done = await self._apply_many(s, [(f, site) for _, f, site in good])
                for (i, _, _), outcome in zip(good, done, strict=True):
                    results[i] = outcome
            return results
        except IntegrityError:
            pass
        out: list[tuple[ReportView, dict[str, Value] | None] | BaseException] = []
        for f in filings:
            try:
                out.append(await _retrying(lambda f=f: self._file_one(f)))  # type: ignore[misc]
            except Exception as exc:  # noqa: BLE001 - handed to that filing's caller
                out.append(exc)
        return out

    async def _file_one(self, f: _Filing) -> tuple[ReportView, dict[str, Value] | None]:
        async with writing(self.db) as s:
            site = _require_site(await self._sites({f.site_id}), f.site_id)
            f.actor.check_site(site.id, site.province_id)
            return (await self._apply_many(s, [(f, site)]))[0]

    async def correct(
        self,
        actor: Actor,
        report_id: int,
        changes: Mapping[str, object],
        *,
        source: str = "api",
        note: str = "",
    ) -> ReportView:
        """Change some values of an existing report; a revision records the change."""
        _check_note(note)
        now = now_from(self.clock)

        async def work() -> tuple[ReportView, dict[str, Value] | None]:
            async with writing(self.db) as s:
                # Locked before merging (PostgreSQL), so a concurrent correction of
                # another field is merged into, never reverted.
                row = await s.get(Report, report_id, with_for_update=True)
                if row is None:
                    raise NotFound(f"report {report_id} does not exist", code="no_report")
                actor.check_site(row.site_id, row.province_id)
                schema = self.schemas.get(row.schema_key)
                partial = schema.validate_values(changes, partial=True)
                merged: dict[str, object] = {**row.values, **partial}
                # A null in the changes removes an optional value.
                for key, raw in changes.items():
                    if raw is None:
                        merged.pop(key, None)
                checked = schema.validate_values(merged)
                site = _require_site(await self._sites({row.site_id}), row.site_id)
                filing = _Filing(schema, row.site_id, row.period, checked, actor, source, note, now)
                return (await self._apply_many(s, [(filing, site)]))[0]

        view, previous = await _retrying(work)
        if previous != view.values:
            await self._notify([ReportChange(view, previous, actor)])
        return view

    def _check_period(self, schema: IndicatorSchema, period: date | None, now: datetime) -> date:
        current = schema.period_of(now)
        if period is None:
            return current
        p = schema.normalise_period(period)
        if p > current:
            raise Invalid(
                f"period: {period.isoformat()} is in the future (current period "
                f"{current.isoformat()})",
                code="future_period",
            )
        return p

    async def _sites(self, site_ids: set[int]) -> dict[int, SiteInfo]:
        return await self.sites.by_ids(site_ids, reload_missing=True)

    async def _apply_many(
        self, s: AsyncSession, filings: Sequence[tuple[_Filing, SiteInfo]]
    ) -> list[tuple[ReportView, dict[str, Value] | None]]:
        """Insert or correct reports within session `s` (each key at most once).

        Returns, per filing, the report's view and its values before (None
        when the filing created it). Existing reports are locked (PostgreSQL)
        before they are compared, so concurrent corrections queue up.
        """
        existing: dict[tuple[str, date, int], Report] = {}
        groups: dict[tuple[str, date], list[int]] = {}
        for f, site in filings:
            groups.setdefault((f.schema.key, f.period), []).append(site.id)
        for (key, period), ids in groups.items():
            found = await s.scalars(
                select(Report)
                .where(Report.schema_key == key, Report.period == period, Report.site_id.in_(ids))
                .order_by(Report.id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
            for found_row in found:
                existing[(key, period, found_row.site_id)] = found_row
        deltas: list[RollupRow] = []
        created: list[tuple[Report, _Filing]] = []
        plan: list[tuple[Report, dict[str, Value] | None]] = []
        for f, site in filings:
            current = existing.get((f.schema.key, f.period, site.id))
            if current is None:
                row = Report(
                    schema_key=f.schema.key,
                    period=f.period,
                    site_id=site.id,
                    province_id=site.province_id,
                    values=f.values,
                    revision=1,
                    late=f.now > f.schema.deadline(f.period),
                    source=f.source,
                    submitted_by=f.actor.label,
                    submitted_at=f.now,
                    updated_by=f.actor.label,
                    updated_at=f.now,
                )
                s.add(row)
                created.append((row, f))
                deltas += delta_rows(f.schema, f.period, site.province_id, f.values, None)
                plan.append((row, None))
                continue
            row = current
            previous: dict[str, Value] = dict(row.values)
            plan.append((row, previous))
            changes = _diff(previous, f.values)
            if not changes:
                continue
            row.revision += 1
            row.values = f.values
            row.updated_by = f.actor.label
            row.updated_at = f.now
            s.add(_revision(row.id, row.revision, f, changes))
            deltas += delta_rows(f.schema, f.period, row.province_id, f.values, previous)
        if created:
            await s.flush()
            s.add_all(_revision(row.id, 1, f, {}) for row, f in created)
        await apply_deltas(s, deltas)
        await s.flush()
        await self._load_priors(s, filings)
        return [(report_view(row), previous) for row, previous in plan]

    async def _load_priors(
        self, s: AsyncSession, filings: Sequence[tuple[_Filing, SiteInfo]]
    ) -> None:
        """Read, for the whole batch at once, each site's report before the filed period.

        The "rising fast" rule needs it for every filing; one query per batch
        here replaces one session per filing afterwards (`previous_values`).
        """
        groups: dict[tuple[str, date], list[int]] = {}
        for f, site in filings:
            if any(i.alert_rise_pct is not None for i in f.schema.indicators):
                groups.setdefault((f.schema.key, f.period), []).append(site.id)
        if len(self._priors) > _PRIOR_CACHE:
            self._priors.clear()
        for (key, period), ids in groups.items():
            latest = (
                select(Report.site_id, func.max(Report.period).label("p"))
                .where(Report.schema_key == key, Report.site_id.in_(ids), Report.period < period)
                .group_by(Report.site_id)
                .subquery()
            )
            rows = await s.execute(
                select(Report.site_id, Report.values).join(
                    latest,
                    (Report.site_id == latest.c.site_id)
                    & (Report.period == latest.c.p)
                    & (Report.schema_key == key),
                )
            )
            found = {sid: dict(values) for sid, values in rows.all()}
            for sid in ids:
                self._priors[(key, sid, period)] = found.get(sid)

    async def previous_values(
        self, schema_key: str, site_id: int, period: date
    ) -> dict[str, Value] | None:
        """The site's latest report before `period` (for "rising fast" rules)."""
        cached = self._priors.pop((schema_key, site_id, period), _MISSING)
        if cached is not _MISSING:
            return cached  # type: ignore[return-value]
        async with self.db.session() as s:
            row = await s.scalar(
                select(Report.values)
                .where(
                    Report.schema_key == schema_key,
                    Report.site_id == site_id,
                    Report.period < period,
                )
                .order_by(Report.period.desc())
                .limit(1)
            )
        return dict(row) if row is not None else None

    # --- late and missing ------------------------------------------------------------

    # --- CSV import ------------------------------------------------------------------

    async def import_csv(
        self,
        actor: Actor,
        schema_key: str,
        text: str,
        *,
        period: date | None = None,
        note: str = "",
    ) -> CsvImportResult:
        """Import one report per line for the actor's communes, all or nothing.

        The header names ``site_code``, optionally ``period`` (YYYY-MM-DD, else
        `period`), and indicator keys. Every line is checked before anything
        is written; a refusal lists each bad line by its number, e.g.
        ``line 4: deaths: must be ≥ 0``.
        """
        actor.require_staff("import reports")
        _check_note(note)
        schema = self.schemas.get(schema_key)
        now = now_from(self.clock)
        lines, errors = read_report_csv(
            schema,
            text,
            period_of=lambda p: self._check_period(schema, p if p is not None else period, now),
        )
        rows = [(x.line, x.site_code, x.period, x.values) for x in lines]
        sites = await self.sites.by_codes({code for _, code, _, _ in rows}, reload_missing=True)
        async with writing(self.db) as s:
            for lineno, code, _, _ in rows:
                site = sites.get(code)
                # Out of reach reads like unknown: no telling which codes exist elsewhere.
                if site is None or not actor.may_touch(site.id, site.province_id):
                    where = " in your province" if actor.province_id is not None else ""
                    errors.append(f"line {lineno}: site_code: no site '{code}'{where}")
                elif site.kind == "chair":
                    errors.append(f"line {lineno}: site_code: the chair site does not file")
            if errors:
                errors.sort(key=lambda e: int(e.split(":", 1)[0].split()[1]))
                shown = errors[:_CSV_MAX_ERRORS]
                more = len(errors) - len(shown)
                tail = f"; and {more} more" if more > 0 else ""
                raise Invalid("; ".join(shown) + tail, code="bad_csv")
            if not rows:
                raise Invalid("csv: no report lines", code="bad_csv")
            created = corrected = unchanged = 0
            changes: list[ReportChange] = []
            filings = [
                (_Filing(schema, sites[code].id, p, checked, actor, "csv", note, now), sites[code])
                for _, code, p, checked in rows
            ]
            for view, previous in await self._apply_many(s, filings):
                if previous is None:
                    created += 1
                elif previous == view.values:
                    unchanged += 1
                else:
                    corrected += 1
                if previous != view.values:
                    changes.append(ReportChange(view, previous, actor))
        await self._notify(changes)
        return CsvImportResult(created, corrected, unchanged)
