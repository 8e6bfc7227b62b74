"""Running totals of report values per schema, period and province.

Every filing adds its contributions; every correction adds the difference
between the new and the old contributions, in the same transaction as the
report itself, so the totals can never disagree with the reports they sum.
`rebuild` recomputes them from the reports (repair, bulk loads, and the test
oracle).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import TypedDict

from sqlalchemy import delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from diemcau.command.models import Report, Rollup
from diemcau.command.schemas import IndicatorSchema, Value
from diemcau.store import Database

__all__ = [
    "REPORTS",
    "Contribution",
    "RollupRow",
    "apply_deltas",
    "contributions",
    "delta_rows",
    "rebuild",
]

# The pseudo-indicator counting reports.
REPORTS = "_reports"

# (indicator, bucket) -> (n, total)
Contribution = dict[tuple[str, str], tuple[int, float]]


class RollupRow(TypedDict):
    """One row of ``command_rollups`` (or a change to add to one)."""

    schema_key: str
    period: date
    province_id: int
    indicator: str
    bucket: str
    n: int
    total: float


_Upsert = sqlite.Insert | postgresql.Insert


def _upsert(ins: _Upsert) -> _Upsert:
    # Built once, executed with many parameter sets: SQLAlchemy caches its
    # compiled form (a statement with inline VALUES is compiled afresh each time).
    return ins.on_conflict_do_update(
        index_elements=["schema_key", "period", "province_id", "indicator", "bucket"],
        set_={"n": Rollup.n + ins.excluded.n, "total": Rollup.total + ins.excluded.total},
    )


_UPSERTS: dict[str, _Upsert] = {
    "sqlite": _upsert(sqlite.insert(Rollup)),
    "postgresql": _upsert(postgresql.insert(Rollup)),
}


def contributions(schema: IndicatorSchema, values: Mapping[str, Value] | None) -> Contribution:
    """What one report adds to the totals (nothing for no report)."""
    if values is None:
        return {}
    out: Contribution = {(REPORTS, ""): (1, 0.0)}
    for ind in schema.indicators:
        v = values.get(ind.key)
        if v is None or ind.type == "text":
            continue
        if ind.type == "bool":
            out[(ind.key, "true" if v else "false")] = (1, 1.0 if v else 0.0)
        elif ind.type == "choice":
            out[(ind.key, str(v))] = (1, 0.0)
        else:
            out[(ind.key, "")] = (1, float(v))
    return out


def _difference(new: Contribution, old: Contribution) -> Contribution:
    out: Contribution = {}
    for key in sorted(set(new) | set(old)):
        n1, t1 = new.get(key, (0, 0.0))
        n0, t0 = old.get(key, (0, 0.0))
        if n1 != n0 or t1 != t0:
            out[key] = (n1 - n0, t1 - t0)
    return out


def delta_rows(
    schema: IndicatorSchema,
    period: date,
    province_id: int | None,
    new: Mapping[str, Value] | None,
    old: Mapping[str, Value] | None,
) -> list[RollupRow]:
    """The rows to add to the totals when a report goes from `old` to `new` values."""
    delta = _difference(contributions(schema, new), contributions(schema, old))
    return [
        {
            "schema_key": schema.key,
            "period": period,
            "province_id": province_id or 0,
            "indicator": ind,
            "bucket": bucket,
            "n": dn,
            "total": dt,
        }
        for (ind, bucket), (dn, dt) in delta.items()
    ]


async def apply_deltas(s: AsyncSession, rows: list[RollupRow]) -> None:
    """Add `rows` (from `delta_rows`, any number of reports) to the totals within `s`.

    Rows with the same key are merged first and sent as one executemany
    upsert, sorted so concurrent writers on PostgreSQL lock the same rows in
    the same order and cannot deadlock.
    """
    merged: dict[tuple[str, date, int, str, str], RollupRow] = {}
    for row in rows:
        key = (
            row["schema_key"],
            row["period"],
            row["province_id"],
            row["indicator"],
            row["bucket"],
        )
        acc = merged.get(key)
        if acc is None:
            merged[key] = row.copy()
        else:
            acc["n"] += row["n"]
            acc["total"] += row["total"]
    ordered = [merged[k] for k in sorted(merged, key=repr)]
    if not ordered:
        return
    stmt = _UPSERTS.get(s.get_bind().dialect.name)
    if stmt is not None:
        await s.execute(stmt, ordered)
        return
    # Any other database: update, then insert what was not there.
    for row in ordered:
        key_clause = (
            (Rollup.schema_key == row["schema_key"])
            & (Rollup.period == row["period"])
            & (Rollup.province_id == row["province_id"])
            & (Rollup.indicator == row["indicator"])
            & (Rollup.bucket == row["bucket"])
        )
        result = await s.execute(
            update(Rollup)
            .where(key_clause)
            .values(n=Rollup.n + row["n"], total=Rollup.total + row["total"])
        )
        if getattr(result, "rowcount", 0) == 0:
            s.add(Rollup(**row))
    await s.flush()


async def rebuild(db: Database, schema: IndicatorSchema, start: date, end: date) -> int:
    """Recompute the totals of periods `start`..`end` from the reports; returns rows written."""
    written = 0
    async with db.session() as s:
        await s.execute(
            delete(Rollup).where(
                Rollup.schema_key == schema.key, Rollup.period >= start, Rollup.period <= end
            )
        )
        totals: dict[tuple[date, int, str, str], list[float]] = {}
        result = await s.stream(
            select(Report.period, Report.province_id, Report.values).where(
                Report.schema_key == schema.key, Report.period >= start, Report.period <= end
            )
        )
        async for period, pid, values in result:
            for (ind, bucket), (n, total) in contributions(schema, values).items():
                acc = totals.setdefault((period, pid or 0, ind, bucket), [0, 0.0])
                acc[0] += n
                acc[1] += total
        rows: list[RollupRow] = [
            {
                "schema_key": schema.key,
                "period": period,
                "province_id": pid,
                "indicator": ind,
                "bucket": bucket,
                "n": int(acc[0]),
                "total": acc[1],
            }
            for (period, pid, ind, bucket), acc in totals.items()
        ]
        for i in range(0, len(rows), 2000):
            await s.execute(insert(Rollup), rows[i : i + 2000])
            written += len(rows[i : i + 2000])
    return written
