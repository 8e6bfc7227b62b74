"""The meeting reports offices open in Excel, as `spreadsheet.Sheet` tables.

Attendance (per site, and counts per province), a conclusion's acknowledgements
and the audit log, with Vietnamese-first headings and times as real date cells in
the zone the caller asks for (Vietnam's by default). The CSV and printable forms
of attendance and the audit log stay where they are; these feed the XLSX exports
(and the acknowledgements' CSV, which had no export before).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from diemcau.audit import AuditQuery, query_audit
from diemcau.audit.query import MAX_PAGE
from diemcau.meetings.roll_call import DEFAULT_UTC_OFFSET_MIN, STATUS_LABELS, zone
from diemcau.spreadsheet import Cell, Column, Sheet
from diemcau.store import Database

if TYPE_CHECKING:
    from diemcau.meetings.service import MeetingService

__all__ = ["acknowledgement_sheet", "attendance_sheets", "audit_sheet"]

_TIME_WIDTH = 20.0
# The first columns of the per-site sheets: row number, the site, its status.
_SITE_COLUMNS = (
    Column("STT / No.", 7),
    Column("Mã điểm cầu / Site code"),
    Column("Tên điểm cầu / Site name"),
    Column("Tỉnh, thành phố / Province"),
    Column("Trạng thái / Status"),
)


def _hhmm(value: datetime | None, tz: timezone) -> str:
    return value.astimezone(tz).strftime("%H:%M:%S") if value else "…"


async def attendance_sheets(
    svc: MeetingService,
    meeting_id: int,
    province_id: int | None = None,
    *,
    utc_offset_min: int = DEFAULT_UTC_OFFSET_MIN,
) -> list[Sheet]:
    """Two sheets: every invited site (of one province if given), then counts per province."""
    tz, label = zone(utc_offset_min)
    summary = await svc.roll_call.summary(meeting_id, province_id)
    _, _, sites = await svc.roll_call.sites(meeting_id, province_id)
    per_site = Sheet(
        title="Điểm danh theo điểm cầu",
        columns=[
            *_SITE_COLUMNS,
            Column(f"Vào lần đầu / First joined ({label})", _TIME_WIDTH),
            Column(f"Rời lần cuối / Last left ({label})", _TIME_WIDTH),
            Column("Số lượt vào / Sessions", 12),
            Column("Có mặt (phút) / Presence (min)", 14, "0.0"),
            Column("Vào muộn / Late", 10),
            Column("Các lượt / Intervals"),
        ],
        rows=[
            [
                no,
                a.code,
                a.name,
                a.province_name,
                STATUS_LABELS.get(a.status, a.status),
                a.first_joined,
                a.last_left,
                len(a.intervals),
                round(a.presence_s / 60, 1),
                "Có / Yes" if a.late else "",
                "; ".join(f"{_hhmm(j, tz)}–{_hhmm(left, tz)}" for j, left, _ in a.intervals),
            ]
            for no, a in enumerate(sites, start=1)
        ],
        tz=tz,
    )
    counts = [*summary.provinces, dataclasses.replace(summary.total, province_name="Tổng / Total")]
    per_province = Sheet(
        title="Theo tỉnh",
        columns=[
            Column("Tỉnh, thành phố / Province"),
            Column("Được mời / Invited", 12),
            Column("Có mặt / Present", 12),
            Column("Đã rời / Left", 12),
            Column("Chưa vào / Not joined", 12),
            Column("Vào lại / Rejoined", 12),
            Column("Muộn / Late", 12),
        ],
        rows=[
            [c.province_name, c.invited, c.present, c.left, c.not_joined, c.rejoined, c.late]
            for c in counts
        ],
        tz=tz,
    )
    return [per_site, per_province]


async def acknowledgement_sheet(
    svc: MeetingService,
    conclusion_id: int,
    province_id: int | None = None,
    *,
    utc_offset_min: int = DEFAULT_UTC_OFFSET_MIN,
) -> Sheet:
    """Every invited site (of one province if given): acknowledged when, or not yet."""
    tz, label = zone(utc_offset_min)
    status = await svc.conclusions.status(conclusion_id, province_id)
    entries = [(e, True) for e in status.acknowledged] + [(e, False) for e in status.pending]
    entries.sort(key=lambda pair: (pair[0].get("province_name", ""), pair[0].get("code", "")))
    rows: list[Sequence[Cell]] = []
    for no, (e, done) in enumerate(entries, start=1):
        at = datetime.fromisoformat(e["acked_at"]) if done else None
        state = "Đã xác nhận / Acknowledged" if done else "Chưa xác nhận / Not yet"
        rows.append([no, e["code"], e["name"], e["province_name"], state, at])
    return Sheet(
        title=f"Kết luận {status.conclusion.id}",
        columns=[
            *_SITE_COLUMNS,
            Column(f"Xác nhận lúc / Acknowledged at ({label})", _TIME_WIDTH),
        ],
        rows=rows,
        tz=tz,
    )


async def _audit_rows(db: Database, q: AuditQuery) -> list[Sequence[Cell]]:
    rows: list[Sequence[Cell]] = []
    page = dataclasses.replace(q, limit=MAX_PAGE, offset=0)
    while True:
        total, records = await query_audit(db, page)
        for r in records:
            details = json.dumps(r.details, ensure_ascii=False) if r.details else ""
            meeting = "" if r.meeting_id is None else r.meeting_id
            rows.append(
                [r.id, r.at, r.actor_kind, r.actor_name, r.action, meeting, r.target, details]
            )
        page = dataclasses.replace(page, offset=page.offset + len(records))
        if not records or page.offset >= total:
            return rows


async def audit_sheet(
    db: Database, q: AuditQuery, *, utc_offset_min: int = DEFAULT_UTC_OFFSET_MIN
) -> Sheet:
    """The whole filtered audit log (no paging), oldest first."""
    tz, label = zone(utc_offset_min)
    return Sheet(
        title="Nhật ký",
        columns=[
            Column("Mã / ID", 9),
            Column(f"Thời điểm / Time ({label})", _TIME_WIDTH),
            Column("Loại tác nhân / Actor kind"),
            Column("Tác nhân / Actor"),
            Column("Hành động / Action"),
            Column("Cuộc họp / Meeting", 12),
            Column("Đối tượng / Target"),
            Column("Chi tiết / Details"),
        ],
        rows=await _audit_rows(db, q),
        tz=tz,
    )
