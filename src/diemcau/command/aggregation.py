"""Aggregation of situation reports by province and nationally, per period.

Counts (``int``) are summed, percentages averaged, choices and yes/no answers
counted per option. The database does the heavy pass: one ``GROUP BY`` over
the narrow ``command_report_values`` table per query, grouped by period,
province and indicator (90 days of a whole country is ~2 million value rows;
see ``bench/command.py``). National figures are rolled up here from the
province groups, so a national mean is weighted by reports, not a mean of means.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import func, select

from diemcau.command.actors import Actor
from diemcau.command.models import Report, ReportValue
from diemcau.command.schemas import Indicator, IndicatorSchema, SchemaRegistry
from diemcau.errors import Invalid
from diemcau.store import Database, Site, Unit

__all__ = ["Aggregate", "Aggregator", "Cell", "ProvinceLabel", "province_labels"]

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

    def public(self, ind: Indicator) -> dict[str, Any]:
        out: dict[str, Any] = {"n": self.n, "value": self.value(ind)}
        if ind.type == "choice":
            out["counts"] = {c.key: self.counts.get(c.key, 0) for c in ind.choices}
        elif ind.type == "bool":
            out["counts"] = {
                "true": self.counts.get("true", 0),
                "false": self.counts.get("false", 0),
            }
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


class Aggregator:
    """Reads aggregates, time series and map values for staff dashboards."""

    def __init__(self, db: Database, schemas: SchemaRegistry) -> None:
        self.db = db
        self.schemas = schemas

    def _window(self, schema: IndicatorSchema, start: date, end: date) -> list[date]:
        if end < start:
            raise Invalid("end: must not be before start", code="bad_range")
        periods = schema.periods(start, end)
        if len(periods) > MAX_PERIODS:
            raise Invalid(f"end: at most {MAX_PERIODS} periods at once", code="bad_range")
        return periods

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
        periods = self._window(schema, start, end)
        scope = actor.scope(province_id)
        wanted = [schema.indicator(k).key for k in indicators] if indicators else None
        first, last = periods[0], periods[-1]
        V = ReportValue
        num_q = select(
            V.period, V.province_id, V.indicator, func.count(V.num), func.sum(V.num)
        ).where(V.schema_key == schema.key, V.period >= first, V.period <= last, V.num.is_not(None))
        choice_q = select(V.period, V.province_id, V.indicator, V.choice, func.count()).where(
            V.schema_key == schema.key, V.period >= first, V.period <= last, V.choice.is_not(None)
        )
        filed_q = select(Report.period, Report.province_id, func.count()).where(
            Report.schema_key == schema.key, Report.period >= first, Report.period <= last
        )
        if scope is not None:
            num_q = num_q.where(V.province_id == scope)
            choice_q = choice_q.where(V.province_id == scope)
            filed_q = filed_q.where(Report.province_id == scope)
        if wanted is not None:
            num_q = num_q.where(V.indicator.in_(wanted))
            choice_q = choice_q.where(V.indicator.in_(wanted))
        num_q = num_q.group_by(V.period, V.province_id, V.indicator)
        choice_q = choice_q.group_by(V.period, V.province_id, V.indicator, V.choice)
        filed_q = filed_q.group_by(Report.period, Report.province_id)
        provinces: dict[int | None, Groups] = {}
        national: Groups = {}
        filed: dict[int | None, dict[date, int]] = {}
        national_filed: dict[date, int] = {}
        choice_keys = {i.key for i in schema.indicators if i.type == "choice"}
        async with self.db.session() as s:
            for period, pid, ind, n, total in (await s.execute(num_q)).all():
                cell = provinces.setdefault(pid, {}).setdefault(period, {}).setdefault(ind, Cell())
                cell.n += int(n)
                cell.total += float(total or 0.0)
            for period, pid, ind, choice, n in (await s.execute(choice_q)).all():
                cell = provinces.setdefault(pid, {}).setdefault(period, {}).setdefault(ind, Cell())
                key = str(choice)
                cell.counts[key] = cell.counts.get(key, 0) + int(n)
                if ind in choice_keys:
                    cell.n += int(n)
            for period, pid, n in (await s.execute(filed_q)).all():
                filed.setdefault(pid, {})[period] = int(n)
                national_filed[period] = national_filed.get(period, 0) + int(n)
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
    ) -> dict[str, Any]:
        """The aggregate as JSON for the dashboard: national rows and province rows."""
        agg = await self.aggregate(actor, schema_key, start, end, province_id=province_id)
        labels = await province_labels(self.db, agg.provinces)
        inds = [i for i in agg.schema.indicators if i.type != "text"]

        def rows(pid: int | None) -> list[dict[str, Any]]:
            out = []
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
                {
                    "province_id": pid,
                    "code": labels[pid].code if pid in labels else None,
                    "name": labels[pid].name if pid in labels else None,
                    "rows": rows(pid),
                }
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
    ) -> dict[str, Any]:
        """One indicator's time series: national and per province, for charts."""
        schema = self.schemas.get(schema_key)
        ind = schema.indicator(indicator)
        if ind.type == "text":
            raise Invalid(
                f"indicator: '{indicator}' is free text and has no series", code="not_numeric"
            )
        agg = await self.aggregate(
            actor, schema_key, start, end, province_id=province_id, indicators=[indicator]
        )
        labels = await province_labels(self.db, agg.provinces)

        def points(pid: int | None) -> list[Any]:
            if ind.type == "choice":
                return [agg.cell(pid, p, ind.key).public(ind)["counts"] for p in agg.periods]
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
                {
                    "province_id": pid,
                    "code": labels[pid].code if pid in labels else None,
                    "name": labels[pid].name if pid in labels else None,
                    "points": points(pid),
                }
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
    ) -> dict[str, Any]:
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
        V = ReportValue
        q = (
            select(V.site_id, V.province_id, V.num, V.choice, Site.code, Site.unit_id)
            .join(Site, Site.id == V.site_id)
            .where(V.schema_key == schema.key, V.period == period, V.indicator == ind.key)
        )
        if scope is not None:
            q = q.where(V.province_id == scope)
        async with self.db.session() as s:
            rows = (await s.execute(q.order_by(V.site_id))).all()
        sites: list[dict[str, Any]] = []
        nums: list[float] = []
        for r in rows:
            item: dict[str, Any] = {
                "site_id": r.site_id,
                "code": r.code,
                "unit_id": r.unit_id,
                "province_id": r.province_id,
            }
            if ind.type == "choice":
                opt = ind.choice(r.choice or "")
                item["value"] = r.choice
                item["color"] = opt.color if opt is not None else ""
            elif ind.type == "bool":
                item["value"] = bool(r.num)
            else:
                value = float(r.num) if r.num is not None else None
                item["value"] = int(value) if ind.type == "int" and value is not None else value
                if value is not None:
                    nums.append(value)
            sites.append(item)
        out: dict[str, Any] = {
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
