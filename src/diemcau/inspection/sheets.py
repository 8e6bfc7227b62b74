"""The inspection log as a sheet (CSV and XLSX): one line per inspection, Vietnamese first."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta, timezone

from diemcau.inspection.views import InspectionView
from diemcau.spreadsheet import Column, Sheet

__all__ = ["MODE_LABELS", "STATE_LABELS", "inspections_sheet"]

STATE_LABELS = {
    "waiting": "Đang chờ / Waiting",
    "live": "Đang xem / Live",
    "ended": "Đã kết thúc / Ended",
    "not_answered": "Không trả lời / Not answered",
}
MODE_LABELS = {"silent": "Chỉ xem / Silent", "two_way": "Gọi hai chiều / Two-way call"}

_COLUMNS = (
    Column("Mã / ID", 8),
    Column("Yêu cầu lúc / Requested at"),
    Column("Mã điểm cầu / Site code"),
    Column("Điểm cầu / Site"),
    Column("Tỉnh, thành phố / Province"),
    Column("Người kiểm tra / Inspector"),
    Column("Vai trò / Role"),
    Column("Kết quả / State"),
    Column("Trả lời / Answered"),
    Column("Trả lời sau (giây) / Answered after (s)"),
    Column("Thời lượng (giây) / Duration (s)"),
    Column("Hình thức / Mode"),
    Column("Gọi (giây) / Call (s)"),
    Column("Lý do kết thúc / End reason"),
    Column("Cuộc họp / Meeting"),
    Column("Đợt kiểm tra / Round"),
)


def inspections_sheet(views: Sequence[InspectionView], *, utc_offset_min: int = 420) -> Sheet:
    """The inspections as listed (newest first), times in the zone asked for."""
    tz = timezone(timedelta(minutes=utc_offset_min))
    rows = [
        (
            v.id,
            v.requested_at,
            v.site_code,
            v.site_name,
            v.province_name,
            v.inspector_name,
            v.inspector_role,
            STATE_LABELS.get(v.state, v.state),
            "Có / Yes" if v.answered else "Không / No",
            v.answer_s(),
            v.duration_s(),
            MODE_LABELS[v.mode],
            v.call_seconds,
            v.reason,
            v.meeting_id,
            v.round_id,
        )
        for v in views
    ]
    return Sheet(title="Kiểm tra trực tuyến", columns=_COLUMNS, rows=rows, tz=tz)
