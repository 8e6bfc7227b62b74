"""The JSON shapes the aggregator hands the dashboard: totals, series and map values.

Typed as dictionaries (not dataclasses) because they are the replies themselves,
with keys that appear only for some indicator types (a choice's ``counts`` and
``legend``, a number's ``range``); see docs/command.md, "Aggregation, series, map, exports".
"""

from __future__ import annotations

from typing import NotRequired, TypedDict

from diemcau.command.schemas import Value

__all__ = [
    "AggregateReply",
    "CellReply",
    "LegendItem",
    "MapReply",
    "MapSite",
    "PeriodRow",
    "Point",
    "ProvinceRef",
    "ProvinceRows",
    "ProvinceSeries",
    "SeriesReply",
    "ValueRange",
]

# One period of a series: a choice indicator's counts per option, else the value.
Point = dict[str, int] | float | int | None


class CellReply(TypedDict):
    """One indicator over one group of reports: how many answered, the headline value."""

    n: int
    value: float | int | None
    counts: NotRequired[dict[str, int]]


class PeriodRow(TypedDict):
    period: str
    filed: int
    values: dict[str, CellReply]


class ProvinceRef(TypedDict):
    """A province by id with its code and name (None when the directory lost it)."""

    province_id: int
    code: str | None
    name: str | None


class ProvinceRows(ProvinceRef):
    rows: list[PeriodRow]


class ProvinceSeries(ProvinceRef):
    points: list[Point]


class AggregateReply(TypedDict):
    schema: str
    periods: list[str]
    national: list[PeriodRow]
    provinces: list[ProvinceRows]


class SeriesReply(TypedDict):
    schema: str
    indicator: str
    type: str
    label_vi: str
    label_en: str
    periods: list[str]
    national: list[Point]
    provinces: list[ProvinceSeries]


class MapSite(TypedDict):
    site_id: int
    code: str
    unit_id: int
    province_id: int | None
    value: Value
    color: NotRequired[str]


class LegendItem(TypedDict):
    key: str
    label_vi: str
    label_en: str
    color: str


class ValueRange(TypedDict):
    min: float
    max: float


class MapReply(TypedDict):
    schema: str
    indicator: str
    type: str
    period: str
    sites: list[MapSite]
    legend: NotRequired[list[LegendItem]]
    range: NotRequired[ValueRange]
