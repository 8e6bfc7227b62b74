"""HTTP routes of the directives page: attachments, the audience preview, issuing with
saved groups, and the tracking tables (list, per province, per commune) with exports.

Handlers authenticate, parse and delegate: role and province checks live in the
services (`command.files`, `command.audience`, `command.tracking`, and the
directive service behind them), so an officer gets here exactly what the older
directive routes let it see.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Literal
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from pydantic import Field

from diemcau.api.bodies import StrictBody
from diemcau.api.deps import RuntimeDep, StaffDep
from diemcau.api.tables import Format, table_response
from diemcau.command.directive_views import DirectiveIn, RecipientState
from diemcau.command.files import MAX_FILE_BYTES
from diemcau.command.targets import Target
from diemcau.command.tracking import ListFilter, Status
from diemcau.errors import Invalid
from diemcau.records import JsonObject

__all__ = ["router"]

router = APIRouter(prefix="/api/command")

_T: list[str | Enum] = ["command: directives (pages)"]


class PreviewBody(StrictBody):
    """A target as the compose form holds it: areas and sites, plus saved groups."""

    target: Target = Field(default_factory=Target)
    groups: list[int] = Field(default_factory=list, max_length=100)


class ComposeBody(StrictBody):
    """A directive as the compose form sends it: the directive and the saved groups it names."""

    directive: DirectiveIn
    groups: list[int] = Field(default_factory=list, max_length=100)


@router.post("/files", tags=_T, summary="Keep a file to attach to a directive (raw body)")
async def upload_file(
    request: Request,
    runtime: RuntimeDep,
    actor: StaffDep,
    name: str = Query(..., min_length=1, max_length=600, description="the file name"),
) -> dict[str, object]:
    """The body is the file itself; its type is checked from its first bytes."""
    actor.require_role("attach files to directives", "admin", "chair", "province_officer")
    raw = bytearray()
    async for chunk in request.stream():  # stop past the limit, never buffer all of it
        raw += chunk
        if len(raw) > MAX_FILE_BYTES:
            raise Invalid(f"file: larger than {MAX_FILE_BYTES // (1024 * 1024)} MB", code="too_big")
    view = await runtime.command.files.store(actor, name, bytes(raw))
    return view.public()


@router.get("/files/{file_id}", tags=_T, summary="An attachment, at its signed link")
async def download_file(
    file_id: int,
    runtime: RuntimeDep,
    sig: str = Query("", max_length=64),
) -> Response:
    """No login: the signed link is the permission (sites open it from their inbox)."""
    view, data = await runtime.command.files.fetch(file_id, sig)
    # An ASCII fallback, and the real (Vietnamese) name for browsers that read RFC 6266.
    ascii_name = view.name.encode("ascii", "replace").decode().replace('"', "_")
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(view.name)}"
    return Response(
        data,
        media_type=view.mime,
        headers={
            "Content-Disposition": disposition,
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, max-age=3600",
        },
    )


@router.post("/directives/preview", tags=_T, summary="How many sites a target reaches, by province")
async def preview(body: PreviewBody, runtime: RuntimeDep, actor: StaffDep) -> dict[str, object]:
    svc = runtime.command
    target = await svc.audience.with_groups(actor, body.target, body.groups)
    return (await svc.audience.preview(actor, target)).public()


@router.post("/directives/compose", tags=_T, summary="Issue a directive naming saved groups too")
async def compose(body: ComposeBody, runtime: RuntimeDep, actor: StaffDep) -> JsonObject:
    svc = runtime.command
    await svc.files.check_owned(actor, [a.url for a in body.directive.attachments])
    target = await svc.audience.with_groups(actor, body.directive.target, body.groups)
    data = body.directive.model_copy(update={"target": target})
    view = await svc.directives.issue_directive(actor, data)
    return view.public()


@router.get("/directive-table", tags=_T, summary="Directives with filters (JSON, CSV, XLSX)")
async def directive_table(
    runtime: RuntimeDep,
    actor: StaffDep,
    status: Status = Query("all"),
    priority: Literal["low", "normal", "high", "urgent"] | None = Query(None),
    q: str = Query("", max_length=200),
    mine: bool = Query(False, description="only those I issued"),
    since: datetime | None = Query(None, description="issued at or after"),
    limit: int = Query(200, ge=1, le=500),
    fmt: Format = Query("json", alias="format"),
) -> Response:
    if since is not None and since.tzinfo is None:
        raise Invalid("since: must include a time zone", code="bad_since")
    flt = ListFilter(status=status, priority=priority, q=q, mine=mine, since=since)
    table = await runtime.command.board.list_table(actor, flt, limit=limit)
    return table_response(table, fmt, "chi-dao")


@router.get(
    "/directives/{directive_id}/provinces",
    tags=_T,
    summary="Delivered, acknowledged, completed, overdue per province (JSON, CSV, XLSX)",
)
async def province_table(
    directive_id: int,
    runtime: RuntimeDep,
    actor: StaffDep,
    fmt: Format = Query("json", alias="format"),
) -> Response:
    table = await runtime.command.board.province_table(actor, directive_id)
    return table_response(table, fmt, f"chi-dao-{directive_id}-tinh")


@router.get(
    "/directives/{directive_id}/sites",
    tags=_T,
    summary="The receiving sites with their state, by province (JSON, CSV, XLSX)",
)
async def site_table(
    directive_id: int,
    runtime: RuntimeDep,
    actor: StaffDep,
    state: RecipientState = Query("all"),
    province_id: int | None = Query(None),
    limit: int = Query(5000, ge=1, le=20000),
    fmt: Format = Query("json", alias="format"),
) -> Response:
    table = await runtime.command.board.recipients_table(
        actor, directive_id, state=state, province_id=province_id, limit=limit
    )
    return table_response(table, fmt, f"chi-dao-{directive_id}-diem-cau")
