"""Inspection figures rolled up by province for the dashboard: inspected, answered, verdicts.

Counted from the records over a period: inspections made and distinct sites inspected,
how many answered and how many were *not answered* (the finding), how many turned into
a call, and the round verdicts written in the period (*đạt / chưa đạt / không trả
lời*). A province officer gets its own province only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select

from diemcau.inspection.models import Inspection, InspectionRoundItem
from diemcau.records import JsonObject
from diemcau.store import Database

__all__ = ["ProvinceFigures", "province_summary"]


@dataclass
class ProvinceFigures:
    """One province's inspection figures over the period (None: the whole country)."""

    province_id: int | None
    province_name: str
    inspections: int = 0
    sites: int = 0
    answered: int = 0
    not_answered: int = 0
    calls: int = 0
    passed: int = 0
    failed: int = 0
    no_answer: int = 0

    def as_dict(self) -> JsonObject:
        return {
            "province_id": self.province_id,
            "province_name": self.province_name,
            "inspections": self.inspections,
            "sites": self.sites,
            "answered": self.answered,
            "not_answered": self.not_answered,
            "calls": self.calls,
            "pass": self.passed,
            "fail": self.failed,
            "no_answer": self.no_answer,
        }


async def province_summary(
    db: Database, since: datetime, until: datetime, province_id: int | None = None
) -> tuple[list[ProvinceFigures], ProvinceFigures]:
    """(per province with any figure, by name; the total) over ``[since, until)``."""
    ins = (
        select(
            Inspection.province_id,
            func.max(Inspection.province_name),
            func.count(),
            func.count(func.distinct(Inspection.site_id)),
            func.sum(case((Inspection.answered_at.is_not(None), 1), else_=0)),
            func.sum(case((Inspection.state == "not_answered", 1), else_=0)),
            func.sum(case((Inspection.call_count > 0, 1), else_=0)),
        )
        .where(Inspection.requested_at >= since, Inspection.requested_at < until)
        .group_by(Inspection.province_id)
    )
    verdicts = (
        select(
            InspectionRoundItem.province_id,
            func.max(InspectionRoundItem.province_name),
            InspectionRoundItem.verdict,
            func.count(),
        )
        .where(
            InspectionRoundItem.decided_at >= since,
            InspectionRoundItem.decided_at < until,
            InspectionRoundItem.verdict.is_not(None),
        )
        .group_by(InspectionRoundItem.province_id, InspectionRoundItem.verdict)
    )
    if province_id is not None:
        ins = ins.where(Inspection.province_id == province_id)
        verdicts = verdicts.where(InspectionRoundItem.province_id == province_id)
    rows: dict[int | None, ProvinceFigures] = {}
    async with db.session() as s:
        for pid, name, n, sites, answered, missed, calls in (await s.execute(ins)).all():
            f = rows.setdefault(pid, ProvinceFigures(pid, name or ""))
            f.inspections, f.sites = int(n), int(sites)
            f.answered, f.not_answered, f.calls = (
                int(answered or 0),
                int(missed or 0),
                int(calls or 0),
            )
        for pid, name, verdict, n in (await s.execute(verdicts)).all():
            f = rows.setdefault(pid, ProvinceFigures(pid, name or ""))
            if verdict == "pass":
                f.passed += int(n)
            elif verdict == "fail":
                f.failed += int(n)
            elif verdict == "no_answer":
                f.no_answer += int(n)
    out = sorted(rows.values(), key=lambda f: f.province_name)
    total = ProvinceFigures(None, "Toàn quốc / Country")
    for f in out:
        for attr in (
            "inspections",
            "sites",
            "answered",
            "not_answered",
            "calls",
            "passed",
            "failed",
            "no_answer",
        ):
            setattr(total, attr, getattr(total, attr) + getattr(f, attr))
    return out, total
