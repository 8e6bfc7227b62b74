"""A report's revision history as a table: what each filing or correction changed,
who made it, when, from where and why (nothing is overwritten without a revision).
"""

from __future__ import annotations

from diemcau.actors import Actor
from diemcau.command.exports import Table
from diemcau.command.report_views import ReportView
from diemcau.command.reports import ReportService
from diemcau.records import iso

__all__ = ["revisions_table"]


def _show(value: object) -> str:
    if value is None:
        return "∅"
    if isinstance(value, bool):
        return "có" if value else "không"
    return str(value)


async def revisions_table(
    reports: ReportService, actor: Actor, report_id: int
) -> tuple[Table, ReportView]:
    """Every revision of one report, oldest first, and the report itself (scope checked).

    ``changes`` reads "deaths: 1 → 2; notes: ∅ → ..." (∅: not given); the first
    filing lists no changes. ``values`` is the whole report after the revision.
    """
    who = actor
    report = await reports.get(who, report_id)
    table = Table(
        keys=["revision", "changed_at", "changed_by", "source", "changes", "note", "values"],
        labels=["Lần", "Thời điểm", "Người thay đổi", "Nguồn", "Thay đổi", "Ghi chú", "Giá trị"],
    )
    for rev in await reports.history(who, report_id):
        changes = "; ".join(
            f"{key}: {_show(old_new[0])} → {_show(old_new[1])}"
            for key, old_new in sorted(rev.changes.items())
        )
        values = "; ".join(f"{k}: {_show(v)}" for k, v in rev.values.items())
        table.rows.append(
            [
                rev.revision,
                iso(rev.changed_at),
                rev.changed_by,
                rev.source,
                changes,
                rev.note,
                values,
            ]
        )
    return table, report
