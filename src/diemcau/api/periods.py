"""The reporting periods a request's query names, read against the schema's calendar.

A date given in the query is moved to the first day of its period; a missing one
means the current period (by the runtime's clock). Every command route (reports,
aggregates, series, map, exports) and the chart and report pages read their periods
here, so "the week of 2026-11-18" is the week starting Monday 2026-11-16 on all of them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from diemcau.command.reports import parse_period
from diemcau.runtime import Runtime

__all__ = ["period_or_current", "period_or_none", "periods_back"]


def period_or_none(runtime: Runtime, schema: str, value: str | None, name: str) -> date | None:
    """`value` (query parameter `name`) as the first day of its period; None when absent."""
    if not value:
        return None
    return runtime.command.schemas.get(schema).normalise_period(parse_period(value, name))


def period_or_current(runtime: Runtime, schema: str, value: str | None, name: str) -> date:
    """`value` (query parameter `name`) as a period, or the schema's current period."""
    day = period_or_none(runtime, schema, value, name)
    if day is not None:
        return day
    return runtime.command.schemas.get(schema).period_of(
        datetime.fromtimestamp(runtime.clock(), UTC)
    )


def periods_back(
    runtime: Runtime, schema: str, start: str | None, end: str | None, count: int
) -> tuple[date, date]:
    """``from``..``to``; by default the `count` periods up to ``to`` (or the current one)."""
    last = period_or_current(runtime, schema, end, "to")
    if start:
        return period_or_current(runtime, schema, start, "from"), last
    return last - runtime.command.schemas.get(schema).period_length() * (count - 1), last
