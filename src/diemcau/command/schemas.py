"""Indicator schemas: what a situation report contains, and how one value is checked.

A schema is a JSON file (one per schema; presets ship in ``command/schemas/``)
validated with Pydantic on load, so a typo in a preset fails at start-up and not
when the first commune files. Values are checked here, once, for every path a
report can take (site terminal, HTTP, CSV import, correction): a bad value is
refused with the indicator's key named, e.g. ``deaths: must be ≥ 0``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from diemcau.errors import Invalid, NotFound
from diemcau.records import JsonObject

__all__ = [
    "Choice",
    "Indicator",
    "IndicatorSchema",
    "SchemaRegistry",
    "IndicatorType",
    "Value",
    "load_schema_file",
    "builtin_registry",
    "MAX_SAFE_INT",
]

IndicatorType = Literal["int", "percent", "choice", "text", "bool"]
# A checked indicator value as stored in a report.
Value = int | float | str | bool

# Largest integer indicator value: the largest a JavaScript number holds exactly.
MAX_SAFE_INT = 2**53 - 1

_KEY = r"^[a-z][a-z0-9_]{0,47}$"
_TRUE = {"1", "true", "yes", "y", "co", "có", "x"}
_FALSE = {"0", "false", "no", "n", "khong", "không", ""}


class Choice(BaseModel):
    """One option of a choice indicator (e.g. a COVID-19 zone level)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(pattern=_KEY)
    label_vi: str = Field(min_length=1)
    label_en: str = Field(min_length=1)
    # Map colour for this option (CSS hex), so the dashboard needs no table of its own.
    color: str = Field(default="", pattern=r"^(#[0-9a-fA-F]{6})?$")


class Indicator(BaseModel):
    """One typed field of a report.

    ``int`` values are counts (aggregated by sum), ``percent`` values are
    0-100 rates (aggregated by mean), ``choice`` and ``bool`` values are
    aggregated by counting each option, ``text`` is kept but not aggregated.
    ``alert_above`` and ``alert_rise_pct`` feed the alert rules (a value above
    a threshold; a rise of at least that many percent over the previous period).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(pattern=_KEY)
    type: IndicatorType
    label_vi: str = Field(min_length=1)
    label_en: str = Field(min_length=1)
    unit_vi: str = ""
    unit_en: str = ""
    required: bool = False
    min: float | None = None
    max: float | None = None
    max_length: int = Field(default=2000, ge=1, le=20000)
    choices: tuple[Choice, ...] = ()
    alert_above: float | None = None
    alert_rise_pct: float | None = Field(default=None, gt=0)
    # Smallest value a rise alert considers (2 → 3 cases is +50 % but not news).
    alert_rise_min: float = 0

    @model_validator(mode="after")
    def _coherent(self) -> Indicator:
        if self.type == "choice":
            if not self.choices:
                raise ValueError(f"{self.key}: a choice indicator needs choices")
            keys = [c.key for c in self.choices]
            if len(set(keys)) != len(keys):
                raise ValueError(f"{self.key}: duplicate choice keys")
        elif self.choices:
            raise ValueError(f"{self.key}: only choice indicators have choices")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"{self.key}: min is greater than max")
        numeric = self.type in ("int", "percent")
        if not numeric and (self.alert_above is not None or self.alert_rise_pct is not None):
            raise ValueError(f"{self.key}: alerts apply to int and percent indicators only")
        return self

    @property
    def numeric(self) -> bool:
        return self.type in ("int", "percent")

    @property
    def lower(self) -> float | None:
        """Effective lower bound: counts and percentages are never negative."""
        if self.type in ("int", "percent"):
            return max(self.min, 0.0) if self.min is not None else 0.0
        return self.min

    @property
    def upper(self) -> float | None:
        if self.type == "percent":
            return min(self.max, 100.0) if self.max is not None else 100.0
        return self.max

    def choice(self, key: str) -> Choice | None:
        for c in self.choices:
            if c.key == key:
                return c
        return None

    def check(self, raw: object) -> Value:
        """Return `raw` as this indicator's typed value, or raise `Invalid` naming the key."""
        k = self.key
        if self.type == "int":
            if isinstance(raw, bool) or not isinstance(raw, int | float):
                raise Invalid(f"{k}: must be an integer", code="bad_value")
            if isinstance(raw, float):
                if not math.isfinite(raw) or not raw.is_integer():
                    raise Invalid(f"{k}: must be an integer", code="bad_value")
                raw = int(raw)
            if abs(raw) > MAX_SAFE_INT:
                # Past 2**53 a browser's JSON reader rounds the number, and
                # float() of a long enough integer raises OverflowError.
                raise Invalid(f"{k}: must be ≤ {MAX_SAFE_INT}", code="bad_value")
            self._bounds(float(raw))
            return int(raw)
        if self.type == "percent":
            if isinstance(raw, bool) or not isinstance(raw, int | float):
                raise Invalid(f"{k}: must be a number (percent)", code="bad_value")
            value = float(raw)
            if not math.isfinite(value):
                raise Invalid(f"{k}: must be a finite number", code="bad_value")
            self._bounds(value)
            return value
        if self.type == "bool":
            if not isinstance(raw, bool):
                raise Invalid(f"{k}: must be true or false", code="bad_value")
            return raw
        if self.type == "choice":
            if not isinstance(raw, str) or self.choice(raw) is None:
                options = ", ".join(c.key for c in self.choices)
                raise Invalid(f"{k}: must be one of {options}", code="bad_value")
            return raw
        if not isinstance(raw, str):
            raise Invalid(f"{k}: must be text", code="bad_value")
        text = raw.strip()
        if len(text) > self.max_length:
            raise Invalid(f"{k}: at most {self.max_length} characters", code="bad_value")
        if self.required and not text:
            raise Invalid(f"{k}: is required", code="missing_value")
        return text

    def _bounds(self, value: float) -> None:
        lo, hi = self.lower, self.upper
        if lo is not None and value < lo:
            raise Invalid(f"{self.key}: must be ≥ {_num(lo)}", code="bad_value")
        if hi is not None and value > hi:
            raise Invalid(f"{self.key}: must be ≤ {_num(hi)}", code="bad_value")

    def parse_cell(self, cell: str) -> Value | None:
        """Read a CSV cell (text) into a value for `check`; empty means "not given"."""
        text = cell.strip()
        if not text:
            return None
        if self.type == "int":
            try:
                return int(text.replace(" ", ""))
            except ValueError:
                raise Invalid(f"{self.key}: must be an integer", code="bad_value") from None
        if self.type == "percent":
            try:
                return float(text.rstrip("%").replace(",", ".").strip())
            except ValueError:
                raise Invalid(f"{self.key}: must be a number (percent)", code="bad_value") from None
        if self.type == "bool":
            low = text.lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise Invalid(f"{self.key}: must be true or false", code="bad_value")
        return text


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


class IndicatorSchema(BaseModel):
    """A report form: its indicators, its period, and when a period's report is due.

    A period is a calendar day (``daily``) or an ISO week starting Monday
    (``weekly``) in the schema's local time (UTC+7 for Vietnam). A report is
    due ``deadline_hours`` after the period ends: a daily report with 12 is due
    at noon the next day; after that it counts as late, and a site with no
    report counts as missing.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(pattern=_KEY)
    version: int = Field(default=1, ge=1)
    label_vi: str = Field(min_length=1)
    label_en: str = Field(min_length=1)
    description_vi: str = ""
    description_en: str = ""
    period: Literal["daily", "weekly"] = "daily"
    utc_offset_hours: float = Field(default=7, ge=-12, le=14)
    deadline_hours: float = Field(default=12, ge=0, le=24 * 14)
    # Site kinds expected to file (the unit level of the site; "chair" never files).
    reporting_kinds: tuple[str, ...] = ("commune",)
    indicators: tuple[Indicator, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> IndicatorSchema:
        keys = [i.key for i in self.indicators]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"duplicate indicator keys: {', '.join(dupes)}")
        return self

    def indicator(self, key: str) -> Indicator:
        for ind in self.indicators:
            if ind.key == key:
                return ind
        raise NotFound(f"indicator: '{key}' is not in schema '{self.key}'", code="no_indicator")

    def validate_values(
        self, values: Mapping[str, object], *, partial: bool = False
    ) -> dict[str, Value]:
        """Check a whole report (or, with `partial`, a correction of some fields).

        Unknown keys are refused (a typo must not vanish silently); a required
        indicator must be present unless `partial`. ``None`` means "not given".
        """
        if not isinstance(values, Mapping):
            raise Invalid("values: must be an object of indicator values", code="bad_value")
        known = {i.key for i in self.indicators}
        for key in values:
            if key not in known:
                raise Invalid(f"{key}: unknown indicator in schema '{self.key}'", code="unknown")
        out: dict[str, Value] = {}
        for ind in self.indicators:
            raw = values.get(ind.key)
            if raw is None:
                if ind.required and not partial:
                    raise Invalid(f"{ind.key}: is required", code="missing_value")
                continue
            out[ind.key] = ind.check(raw)
        return out

    # --- periods -----------------------------------------------------------------

    @property
    def tz(self) -> timezone:
        return timezone(timedelta(hours=self.utc_offset_hours))

    def period_of(self, at: datetime) -> date:
        """The period (its first local day) containing instant `at`."""
        local = at.astimezone(self.tz).date()
        if self.period == "weekly":
            return local - timedelta(days=local.weekday())
        return local

    def normalise_period(self, day: date) -> date:
        """The period containing local day `day` (weekly: that week's Monday)."""
        if self.period == "weekly":
            return day - timedelta(days=day.weekday())
        return day

    def period_length(self) -> timedelta:
        return timedelta(days=7 if self.period == "weekly" else 1)

    def period_start(self, period: date) -> datetime:
        return datetime(period.year, period.month, period.day, tzinfo=self.tz).astimezone(UTC)

    def period_end(self, period: date) -> datetime:
        return self.period_start(period) + self.period_length()

    def deadline(self, period: date) -> datetime:
        return self.period_end(period) + timedelta(hours=self.deadline_hours)

    def periods(self, start: date, end: date) -> list[date]:
        """Every period from `start` to `end` inclusive (normalised)."""
        out: list[date] = []
        cur, last = self.normalise_period(start), self.normalise_period(end)
        step = self.period_length()
        while cur <= last:
            out.append(cur)
            cur += step
        return out

    def public(self) -> JsonObject:
        """The schema as the dashboard and site terminal read it."""
        return self.model_dump(mode="json")


def load_schema_file(path: Path | str, text: str | None = None) -> IndicatorSchema:
    """Parse and validate one schema file; a bad file raises `Invalid` naming it."""
    name = str(path)
    try:
        data = json.loads(text if text is not None else Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise Invalid(f"schema file {name}: cannot read JSON: {exc}", code="bad_schema") from exc
    try:
        return IndicatorSchema.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise Invalid(
            f"schema file {name}: {where}: {first.get('msg', 'invalid')}", code="bad_schema"
        ) from exc


class SchemaRegistry:
    """The schemas this server knows, by key (built-in presets plus any extra folder)."""

    def __init__(self, schemas: Iterable[IndicatorSchema] = ()) -> None:
        self._by_key: dict[str, IndicatorSchema] = {}
        for s in schemas:
            self.add(s)

    def add(self, schema: IndicatorSchema) -> None:
        if schema.key in self._by_key:
            raise Invalid(f"schema '{schema.key}' is defined twice", code="duplicate_schema")
        self._by_key[schema.key] = schema

    def load_dir(self, folder: Path) -> None:
        """Add every ``*.json`` schema in `folder` (sorted, so errors are reproducible)."""
        for path in sorted(folder.glob("*.json")):
            self.add(load_schema_file(path))

    def get(self, key: str) -> IndicatorSchema:
        try:
            return self._by_key[key]
        except KeyError:
            raise NotFound(f"schema: '{key}' is not a known schema", code="no_schema") from None

    def all(self) -> list[IndicatorSchema]:
        return [self._by_key[k] for k in sorted(self._by_key)]

    def __contains__(self, key: object) -> bool:
        return key in self._by_key


def builtin_registry() -> SchemaRegistry:
    """The presets shipped with diemcau (COVID-19, natural disaster)."""
    registry = SchemaRegistry()
    folder = resources.files("diemcau.command") / "schemas"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if re.fullmatch(r"[a-z0-9_]+\.json", entry.name):
            registry.add(load_schema_file(entry.name, entry.read_text(encoding="utf-8")))
    return registry
