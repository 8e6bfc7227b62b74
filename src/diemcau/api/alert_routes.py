"""HTTP route of the alerts page: the alerts table with filters, what triggered each and
its acknowledgement note, in JSON or as CSV/XLSX (acknowledging is
``POST /api/command/alerts/{id}/ack`` with an optional note).
"""

from __future__ import annotations

from enum import Enum
from typing import Literal

from fastapi import APIRouter, Query, Response

from diemcau.alerting import Severity
from diemcau.api.deps import RuntimeDep, StaffDep
from diemcau.api.tables import Format, table_response
from diemcau.command.alert_board import AlertFilter

__all__ = ["router"]

router = APIRouter(prefix="/api/command")

_T: list[str | Enum] = ["command: alerts (pages)"]


@router.get("/alert-table", tags=_T, summary="Active or past alerts, filtered (JSON, CSV, XLSX)")
async def alert_table(
    runtime: RuntimeDep,
    actor: StaffDep,
    state: Literal["active", "cleared", "all"] = Query("active"),
    kind: list[str] = Query([], max_length=20),
    severity: list[Severity] = Query([], max_length=3),
    province_id: int | None = Query(None),
    unacknowledged: bool = Query(False),
    q: str = Query("", max_length=200),
    limit: int = Query(500, ge=1, le=1000),
    fmt: Format = Query("json", alias="format"),
) -> Response:
    active = {"active": True, "cleared": False, "all": None}[state]
    flt = AlertFilter(
        active=active,
        kinds=tuple(kind),
        severities=tuple(severity),
        province_id=province_id,
        unacknowledged=unacknowledged,
        q=q,
    )
    table, details = await runtime.command.alert_board.table(actor, flt, limit=limit)
    return table_response(table, fmt, f"canh-bao-{state}", details=details)
