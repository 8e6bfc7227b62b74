"""Aggregation of situation reports by province and nationally, per period.

Counts (``int``) are summed, percentages averaged, choices and yes/no answers
counted per option. Reads come from the running totals of
``command_rollups`` (one row per period, province, indicator and option,
kept current by every filing), so 90 days of a whole country is ~40,000 rows
rather than 300,000 reports (``bench/command.py``). National figures are
summed here from the province totals, so a national mean is weighted by
reports, not a mean of means.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select

from diemcau.actors import Actor
from diemcau.command.aggregate_replies import (
    AggregateReply,
    CellReply,
    MapReply,
    MapSite,
    PeriodRow,
    Point,
    ProvinceRef,
    SeriesReply,
)
from diemcau.command.models import Report, Rollup
from diemcau.command.rollups import REPORTS
from diemcau.command.schemas import Indicator, IndicatorSchema, SchemaRegistry
from diemcau.directory.sites import SiteDirectory
from diemcau.errors import Invalid
from diemcau.store import Database, Unit

__all__ = [
    "Aggregate",
    "Aggregator",
    "Cell",
    "ProvinceLabel",
    "period_window",
    "series_indicator",
    "province_cells",
    "province_code",
    "province_labels",
]

# Longest window one aggregation may cover, in periods (guards the server).
MAX_PERIODS = 400


@dataclass
class Cell:
    """One indicator over one group of reports (a province or the country, one period)."""

    n: int = 0
    total: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, other: Cell) -> None:
        self.n += other.n
        self.total += other.total
        for k, v in other.counts.items():
            self.counts[k] = self.counts.get(k, 0) + v

    def value(self, ind: Indicator) -> float | int | None:
        """The headline number: a sum, a mean, or how many answered yes."""
        if ind.type == "int":
            return int(round(self.total))
        if ind.type == "percent":
            return round(self.total / self.n, 4) if self.n else None
        if ind.type == "bool":
            return int(round(self.total))
        return None

    def option_counts(self, ind: Indicator) -> dict[str, int] | None:
        """Reports per option of a choice or yes/no indicator (None for the others)."""
        if ind.type == "choice":
            return {c.key: self.counts.get(c.key, 0) for c in ind.choices}
        if ind.type == "bool":
            return {"true": self.counts.get("true", 0), "false": self.counts.get("false", 0)}
        return None

    def public(self, ind: Indicator) -> CellReply:
        out: CellReply = {"n": self.n, "value": self.value(ind)}
        counts = self.option_counts(ind)
        if counts is not None:
            out["counts"] = counts
        return out


Groups = dict[date, dict[str, Cell]]


@dataclass
class Aggregate:
    """Aggregated values: ``provinces[pid][period][indicator]`` and ``national[period][...]``."""

    schema: IndicatorSchema
    periods: list[date]
    provinces: dict[int | None, Groups]
    national: Groups
    filed: dict[int | None, dict[date, int]]
    national_filed: dict[date, int]

    def cell(self, province_id: int | None, period: date, indicator: str) -> Cell:
        groups = self.national if province_id is None else self.provinces.get(province_id, {})
        return groups.get(period, {}).get(indicator, Cell())


@dataclass(frozen=True)
class ProvinceLabel:
    id: int
    code: str
    name: str


async def province_labels(db: Database, ids: Iterable[int | None]) -> dict[int, ProvinceLabel]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    async with db.session() as s:
        rows = (
            await s.execute(select(Unit.id, Unit.code, Unit.name).where(Unit.id.in_(wanted)))
        ).all()
    return {r.id: ProvinceLabel(r.id, r.code, r.name) for r in rows}


def province_ref(pid: int, labels: dict[int, ProvinceLabel]) -> ProvinceRef:
    """The province's id, code and name as a reply carries them (None: not in the directory)."""
    label = labels.get(pid)
    return {
        "province_id": pid,
        "code": label.code if label is not None else None,
        "name": label.name if label is not None else None,
    }


def province_code(pid: int | None, labels: Mapping[int, ProvinceLabel]) -> str:
    """The province's code, "" when unknown (how per-province tables are ordered)."""
    label = labels.get(pid) if pid is not None else None
    return label.code if label is not None else ""


def province_cells(pid: int | None, labels: Mapping[int, ProvinceLabel]) -> list[int | str | None]:
    """The first cells of a per-province table row: id, code, name ("" when unknown)."""
    label = labels.get(pid) if pid is not None else None
    return [pid, label.code if label else "", label.name if label else ""]


def period_window(schema: IndicatorSchema, start: date, end: date) -> list[date]:
    """The schema's periods from `start` to `end`, refusing a reversed or too long window."""
    if end < start:
        raise Invalid("end: must not be before start", code="bad_range")
    periods = schema.periods(start, end)
    if len(periods) > MAX_PERIODS:
        raise Invalid(f"end: at most {MAX_PERIODS} periods at once", code="bad_range")
    return periods


def series_indicator(schema: IndicatorSchema, key: str) -> Indicator:
    """The indicator a time series is drawn of (free text has none)."""
    ind = schema.indicator(key)
    if ind.type == "text":
        raise Invalid(f"indicator: '{key}' is free text and has no series", code="not_numeric")
    return ind


class Aggregator:
    """Reads aggregates, time series and map values for staff dashboards."""

    def __init__(
        self, db: Database, schemas: SchemaRegistry, sites: SiteDirectory | None = None
    ) -> None:
        self.db = db
        self.schemas = schemas
        self.sites = sites if sites is not None else SiteDirectory(db)

    async def aggregate(
        self,
        actor: Actor,
        schema_key: str,
        start: date,
        end: date,
        *,
        province_id: int | None = None,
        indicators: Iterable[str] | None = None,
    ) -> Aggregate:
        """Aggregate every (or the named) indicator over periods `start`..`end`.

        A province officer gets its own province only (its "national" is then
        that province's total).
        """
        actor.require_staff("read aggregates")
        schema = self.schemas.get(schema_key)
        periods = period_window(schema, start, end)
        scope = actor.scope(province_id)
        wanted = [schema.indicator(k).key for k in indicators] if indicators else None
        first, last = periods[0], periods[-1]
        R = Rollup
        q = select(R.period, R.province_id, R.indicator, R.bucket, R.n, R.total).where(
            R.schema_key == schema.key, R.period >= first, R.period <= last
        )
        if scope is not None:
            q = q.where(R.province_id == scope)
        if wanted is not None:
            q = q.where(R.indicator.in_([*wanted, REPORTS]))
        provinces: dict[int | None, Groups] = {}
        national: Groups = {}
        filed: dict[int | None, dict[date, int]] = {}
        national_filed: dict[date, int] = {}
        async with self.db.session() as s:
            result = (await s.execute(q)).all()
        for period, raw_pid, ind, bucket, n, total in result:
            if not n and not total:
                continue
            pid: int | None = raw_pid or None
            if ind == REPORTS:
                filed.setdefault(pid, {})[period] = int(n)
                national_filed[period] = national_filed.get(period, 0) + int(n)
                continue
            cell = provinces.setdefault(pid, {}).setdefault(period, {}).setdefault(ind, Cell())
            cell.n += int(n)
            cell.total += float(total)
            if bucket:
                cell.counts[bucket] = cell.counts.get(bucket, 0) + int(n)
        for groups in provinces.values():
            for period, cells in groups.items():
                target = national.setdefault(period, {})
                for ind, cell in cells.items():
                    target.setdefault(ind, Cell()).add(cell)
        return Aggregate(schema, periods, provinces, national, filed, national_filed)

    async def aggregate_public(
        self,
        actor: Actor,
        schema_key: str,
        start: date,
        end: date,
        *,
        province_id: int | None = None,
    ) -> AggregateReply:
        """The aggregate as JSON for the dashboard: national rows and province rows."""
        agg = await self.aggregate(actor, schema_key, start, end, province_id=province_id)
        labels = await province_labels(self.db, agg.provinces)
        inds = [i for i in agg.schema.indicators if i.type != "text"]

        def rows(pid: int | None) -> list[PeriodRow]:
            out: list[PeriodRow] = []
            for p in agg.periods:
                filed = (agg.national_filed if pid is None else agg.filed.get(pid, {})).get(p, 0)
                out.append(
                    {
                        "period": p.isoformat(),
                        "filed": filed,
                        "values": {i.key: agg.cell(pid, p, i.key).public(i) for i in inds},
                    }
                )
            return out

        return {
            "schema": agg.schema.key,
            "periods": [p.isoformat() for p in agg.periods],
            "national": rows(None),
            "provinces": [
                {**province_ref(pid, labels), "rows": rows(pid)}
                for pid in sorted(agg.provinces, key=lambda x: (x is None, x or 0))
                if pid is not None
            ],
        }

    async def series(
        self,
        actor: Actor,
        schema_key: str,
        indicator: str,
        start: date,
        end: date,
        *,
        province_id: int | None = None,
    ) -> SeriesReply:
        """One indicator's time series: national and per province, for charts."""
        schema = self.schemas.get(schema_key)
        ind = series_indicator(schema, indicator)
        agg = await self.aggregate(
            actor, schema_key, start, end, province_id=province_id, indicators=[indicator]
        )
        labels = await province_labels(self.db, agg.provinces)

        def points(pid: int | None) -> list[Point]:
            if ind.type == "choice":
                return [agg.cell(pid, p, ind.key).option_counts(ind) for p in agg.periods]
            return [agg.cell(pid, p, ind.key).value(ind) for p in agg.periods]

        return {
            "schema": schema.key,
            "indicator": ind.key,
            "type": ind.type,
            "label_vi": ind.label_vi,
            "label_en": ind.label_en,
            "periods": [p.isoformat() for p in agg.periods],
            "national": points(None),
            "provinces": [
                {**province_ref(pid, labels), "points": points(pid)}
                for pid in sorted(p for p in agg.provinces if p is not None)
            ],
        }

    async def map_values(
        self,
        actor: Actor,
        schema_key: str,
        indicator: str,
        period: date,
        *,
        province_id: int | None = None,
    ) -> MapReply:
        """Per-site values of one indicator for one period, to colour the map.

        Choice indicators carry their option's colour; numbers carry the value
        and the range so the dashboard can scale its palette.
        """
        actor.require_staff("read the map")
        schema = self.schemas.get(schema_key)
        ind = schema.indicator(indicator)
        if ind.type == "text":
            raise Invalid(
                f"indicator: '{indicator}' is free text and cannot colour a map", code="not_numeric"
            )
        period = schema.normalise_period(period)
        scope = actor.scope(province_id)
        q = select(Report.site_id, Report.province_id, Report.values).where(
            Report.schema_key == schema.key, Report.period == period
        )
        if scope is not None:
            q = q.where(Report.province_id == scope)
        async with self.db.session() as s:
            rows = (await s.execute(q.order_by(Report.site_id))).all()
        known = await self.sites.by_ids((r.site_id for r in rows), reload_missing=True)
        sites: list[MapSite] = []
        nums: list[float] = []
        for r in rows:
            raw = r.values.get(ind.key)
            site = known.get(r.site_id)
            if raw is None or site is None:
                continue
            item: MapSite = {
                "site_id": r.site_id,
                "code": site.code,
                "unit_id": site.unit_id,
                "province_id": r.province_id,
                "value": raw,
            }
            if ind.type == "choice":
                opt = ind.choice(str(raw))
                item["color"] = opt.color if opt is not None else ""
            elif ind.numeric:
                nums.append(float(raw))
            sites.append(item)
        out: MapReply = {
            "schema": schema.key,
            "indicator": ind.key,
            "type": ind.type,
            "period": period.isoformat(),
            "sites": sites,
        }
        if ind.type == "choice":
            out["legend"] = [
                {"key": c.key, "label_vi": c.label_vi, "label_en": c.label_en, "color": c.color}
                for c in ind.choices
            ]
        elif nums:
            out["range"] = {"min": min(nums), "max": max(nums)}
        return out
