"""Spreadsheet downloads of the meeting reports: attendance, acknowledgements, audit log.

Each sits beside the CSV it complements (``report.csv`` → ``report.xlsx``,
``export.csv`` → ``export.xlsx``); a conclusion's acknowledgements, which had only
a JSON view, come as ``.xlsx`` and ``.csv``. Access is the same as the JSON and CSV
forms: staff, a province officer limited to its province; the audit log to admin,
chair and operator. Times are shown in the zone ``utc_offset_min`` names (Vietnam's
by default), as real date cells.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response

from diemcau.actors import Actor
from diemcau.api.deps import RuntimeDep, StaffDep, staff_actor
from diemcau.api.downloads import attachment, sheet_download
from diemcau.audit import AuditQuery
from diemcau.meetings.service import MeetingService
from diemcau.meetings.sheets import acknowledgement_sheet, attendance_sheets, audit_sheet
from diemcau.runtime import Runtime
from diemcau.spreadsheet import XLSX_MEDIA_TYPE, xlsx_bytes

__all__ = ["router"]

router = APIRouter(tags=["exports"])

_Auditors = Annotated[Actor, Depends(staff_actor("admin", "chair", "operator"))]
_OFFSET = Query(420, ge=-720, le=840, description="time zone of the times shown, minutes")


def _meetings(runtime: Runtime) -> MeetingService:
    return runtime.meetings


@router.get(
    "/api/meetings/{meeting_id}/attendance/report.xlsx",
    summary="Attendance report as XLSX (per site, and per province)",
    response_class=Response,
)
async def attendance_xlsx(
    meeting_id: int,
    runtime: RuntimeDep,
    actor: StaffDep,
    utc_offset_min: int = _OFFSET,
) -> Response:
    sheets = await attendance_sheets(
        _meetings(runtime), meeting_id, actor.scope(), utc_offset_min=utc_offset_min
    )
    return attachment(xlsx_bytes(*sheets), XLSX_MEDIA_TYPE, f"diem-danh-{meeting_id}.xlsx")


def _acknowledgements(fmt: Literal["csv", "xlsx"]) -> Callable[..., Awaitable[Response]]:
    """The route serving a conclusion's acknowledgements in `fmt` (one per format)."""

    async def acknowledgements(
        conclusion_id: int,
        runtime: RuntimeDep,
        actor: StaffDep,
        utc_offset_min: int = _OFFSET,
    ) -> Response:
        sheet = await acknowledgement_sheet(
            _meetings(runtime), conclusion_id, actor.scope(), utc_offset_min=utc_offset_min
        )
        return sheet_download(sheet, fmt, f"xac-nhan-ket-luan-{conclusion_id}")

    return acknowledgements


_FORMATS: tuple[Literal["csv", "xlsx"], ...] = ("xlsx", "csv")
for _fmt in _FORMATS:
    router.add_api_route(
        f"/api/conclusions/{{conclusion_id}}/acknowledgements.{_fmt}",
        _acknowledgements(_fmt),
        methods=["GET"],
        name=f"acknowledgements_{_fmt}",
        summary=f"Who has acknowledged a conclusion, as {_fmt.upper()}",
        response_class=Response,
    )


def _audit_filter(
    meeting_id: int | None = Query(None),
    action: str | None = Query(None, max_length=64),
    actor: str | None = Query(None, max_length=200),
    since: datetime | None = Query(None),
    until: datetime | None = Query(None),
) -> AuditQuery:
    return AuditQuery(meeting_id, action, actor, since, until)


@router.get(
    "/api/audit/export.xlsx",
    tags=["audit"],
    summary="Audit log as XLSX (the same filters as the CSV)",
    response_class=Response,
)
async def audit_xlsx(
    runtime: RuntimeDep,
    _w: _Auditors,
    q: AuditQuery = Depends(_audit_filter),
    utc_offset_min: int = _OFFSET,
) -> Response:
    sheet = await audit_sheet(runtime.db, q, utc_offset_min=utc_offset_min)
    return sheet_download(sheet, "xlsx", "nhat-ky")
