"""The reporting periods a request's query names, read against the schema's calendar.

A date given in the query is moved to the first day of its period; a missing one
means the current period (by the runtime's clock). Every command route (reports,
aggregates, series, map, exports) and the chart and report pages read their periods
here, so "the week of 2026-11-18" is the week starting Monday 2026-11-16 on all of them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import Depends, Query

from diemcau.api.deps import RuntimeDep
from diemcau.command.reports import parse_period
from diemcau.runtime import Runtime

__all__ = [
    "RecentWindow",
    "Window",
    "period_or_current",
    "period_or_none",
    "periods_back",
    "recent_window",
]


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


@dataclass(frozen=True)
class Window:
    """What a staff range query names: a schema, its periods `first`..`last`, a province
    (None: every province in the caller's reach)."""

    schema: str
    first: date
    last: date
    province_id: int | None


def recent_window(count: int) -> Callable[..., Awaitable[Window]]:
    """A route dependency reading ``schema``, ``from``, ``to`` and ``province_id``; by
    default the `count` periods up to ``to`` (or the current one)."""

    async def window(
        runtime: RuntimeDep,
        schema: str = Query(..., max_length=48),
        start: str | None = Query(None, alias="from"),
        end: str | None = Query(None, alias="to"),
        province_id: int | None = Query(None),
    ) -> Window:
        first, last = periods_back(runtime, schema, start, end, count)
        return Window(schema, first, last, province_id)

    return window


# The aggregate, series, export and series-table routes: 30 periods by default.
RecentWindow = Annotated[Window, Depends(recent_window(30))]
