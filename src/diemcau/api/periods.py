"""The reporting periods a page's query names, read against the schema's calendar.

A date given in the query is moved to the first day of its period; a missing one
means the current period (by the runtime's clock). The chart and report pages read
their periods here, so a date means the same period on both.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from diemcau.command.reports import parse_period
from diemcau.runtime import Runtime

__all__ = ["period_or_current", "periods_back"]


def period_or_current(runtime: Runtime, schema: str, value: str | None, name: str) -> date:
    """`value` (query parameter `name`) as a period, or the schema's current period."""
    sch = runtime.command.schemas.get(schema)
    if value:
        return sch.normalise_period(parse_period(value, name))
    return sch.period_of(datetime.fromtimestamp(runtime.clock(), UTC))


def periods_back(
    runtime: Runtime, schema: str, start: str | None, end: str | None, count: int
) -> tuple[date, date]:
    """``from``..``to``; by default the `count` periods up to ``to`` (or the current one)."""
    last = period_or_current(runtime, schema, end, "to")
    if start:
        return period_or_current(runtime, schema, start, "from"), last
    return last - runtime.command.schemas.get(schema).period_length() * (count - 1), last
