"""The shapes of situation reports as callers see them: a report, a revision, a change,
who has filed for a period (with its totals), and what a CSV import did."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TypedDict

from diemcau.actors import Actor
from diemcau.command.models import Report
from diemcau.command.schemas import Value
from diemcau.command.timeutil import aware
from diemcau.errors import Invalid
from diemcau.records import JsonObject, Record, iso

__all__ = [
    "CsvImportResult",
    "FilingStatus",
    "LateSite",
    "ProvinceFiling",
    "ReportChange",
    "ReportView",
    "RevisionView",
    "rate",
    "SiteRef",
    "Summary",
    "parse_period",
    "report_view",
]


@dataclass(frozen=True)
class ReportView(Record):
    """A report as callers see it (its reply is its fields)."""

    id: int
    schema: str
    period: date
    site_id: int
    province_id: int | None
    values: dict[str, Value]
    revision: int
    late: bool
    source: str
    submitted_by: str
    submitted_at: datetime
    updated_by: str
    updated_at: datetime

    public = Record.as_dict


@dataclass(frozen=True)
class RevisionView(Record):
    """One revision of a report (its reply is its fields)."""

    revision: int
    values: dict[str, Value]
    changes: dict[str, list[Value | None]]
    source: str
    changed_by: str
    changed_at: datetime
    note: str

    public = Record.as_dict


@dataclass(frozen=True)
class ReportChange:
    """What listeners (alert rules, the staff stream) hear after a filing or correction."""

    report: ReportView
    previous: dict[str, Value] | None
    actor: Actor


@dataclass
class ProvinceFiling:
    province_id: int | None
    expected: int = 0
    filed: int = 0
    late: int = 0

    @property
    def missing(self) -> int:
        return self.expected - self.filed

    def public(self) -> JsonObject:
        return {
            "province_id": self.province_id,
            "expected": self.expected,
            "filed": self.filed,
            "late": self.late,
            "missing": self.missing,
        }


class SiteRef(TypedDict):
    """A site in the missing list of a filing status."""

    site_id: int
    code: str
    name: str
    province_id: int | None


class LateSite(SiteRef):
    submitted_at: str | None


def rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


@dataclass(frozen=True)
class Summary:
    """The national (or an officer's provincial) totals of one period."""

    schema: str
    period: date
    deadline: datetime
    overdue: bool
    expected: int
    filed: int
    late: int

    def totals(self) -> JsonObject:
        return {
            "schema": self.schema,
            "period": self.period.isoformat(),
            "deadline": iso(self.deadline),
            "overdue": self.overdue,
            "expected": self.expected,
            "filed": self.filed,
            "late": self.late,
            "missing": self.expected - self.filed,
        }

    def public(self) -> JsonObject:
        return {**self.totals(), "rate": rate(self.filed, self.expected)}


@dataclass
class FilingStatus:
    """Who has filed for one period: totals, per province, and the missing sites."""

    schema: str
    period: date
    deadline: datetime
    overdue: bool
    provinces: list[ProvinceFiling]
    missing_sites: list[SiteRef] = field(default_factory=list)
    late_sites: list[LateSite] = field(default_factory=list)

    @property
    def expected(self) -> int:
        return sum(p.expected for p in self.provinces)

    @property
    def filed(self) -> int:
        return sum(p.filed for p in self.provinces)

    def summary(self) -> Summary:
        late = sum(p.late for p in self.provinces)
        return Summary(
            self.schema, self.period, self.deadline, self.overdue, self.expected, self.filed, late
        )

    def public(self) -> JsonObject:
        return {
            **self.summary().totals(),
            "provinces": [p.public() for p in self.provinces],
            "missing_sites": self.missing_sites,
            "late_sites": self.late_sites,
        }


@dataclass(frozen=True)
class CsvImportResult:
    created: int
    corrected: int
    unchanged: int

    def public(self) -> dict[str, int]:
        return {"created": self.created, "corrected": self.corrected, "unchanged": self.unchanged}


def parse_period(text: str, field_name: str = "period") -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise Invalid(f"{field_name}: must be a date YYYY-MM-DD", code="bad_period") from None


def report_view(row: Report) -> ReportView:
    return ReportView(
        id=row.id,
        schema=row.schema_key,
        period=row.period,
        site_id=row.site_id,
        province_id=row.province_id,
        values=dict(row.values),
        revision=row.revision,
        late=row.late,
        source=row.source,
        submitted_by=row.submitted_by,
        submitted_at=aware(row.submitted_at),
        updated_by=row.updated_by,
        updated_at=aware(row.updated_at),
    )
