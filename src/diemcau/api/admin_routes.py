"""HTTP routes of the administration page: staff accounts, site credentials with a
printable sheet and QR code, and indicator schemas added from a JSON file.

Staff accounts and schemas are for admins; site credentials for whoever may
rotate them (admin, operator, a province officer for its own province), as the
directory's rotate and revoke routes allow. Saved site groups are managed through
``/api/site-groups``. Every change is audited.
"""

from __future__ import annotations

import io
import json
from datetime import datetime
from enum import Enum
from typing import Any

import segno
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from diemcau.accounts.credential_list import CredentialState, list_credentials
from diemcau.accounts.service import StaffAccount, StaffPrincipal, join_link, rotate_site
from diemcau.accounts.staff_admin import StaffAdmin, StaffChange
from diemcau.api.deps import get_runtime, require_staff
from diemcau.api.page_services import actor_of, page_services
from diemcau.api.tables import Format, table_response
from diemcau.command.exports import Table
from diemcau.command.schema_store import MAX_SCHEMA_BYTES, SchemaRefused
from diemcau.command.schema_tables import indicators_table
from diemcau.directory import service as directory
from diemcau.errors import Invalid, NotFound
from diemcau.meetings.audit import record_audit
from diemcau.meetings.service import MeetingService
from diemcau.runtime import Runtime

__all__ = ["router"]

router = APIRouter(prefix="/api/admin")

_admin = require_staff("admin")
_credentials = require_staff("admin", "operator", "province_officer")
_staff = require_staff()
_T: list[str | Enum] = ["administration"]


async def _audit(
    runtime: Runtime, who: StaffPrincipal, action: str, target: str, details: dict[str, Any]
) -> None:
    async with runtime.db.session() as s:
        await record_audit(s, who, action, target=target, details=details)


def _qr_document(data: str) -> str:
    """A standalone SVG document of `data`'s QR code (error correction M), for an <img>."""
    buf = io.BytesIO()
    segno.make(data, error="m", boost_error=False, micro=False).save(
        buf, kind="svg", xmldecl=False, svgns=True, scale=8, border=4, dark="#000"
    )
    return buf.getvalue().decode()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _account(a: StaffAccount) -> dict[str, Any]:
    return {
        "username": a.username,
        "display_name": a.display_name,
        "role": a.role,
        "province_id": a.province_id,
        "province_code": a.province_code,
        "disabled": a.disabled,
        "created_at": _iso(a.created_at),
    }


# --- staff accounts ----------------------------------------------------------------------


class NewStaff(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=200)
    role: str = Field(min_length=1, max_length=32)
    province_code: str | None = Field(None, max_length=32)
    display_name: str = Field("", max_length=200)


class StaffPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: str | None = Field(None, max_length=32)
    province_code: str | None = Field(None, max_length=32, description='"" removes it')
    display_name: str | None = Field(None, max_length=200)
    disabled: bool | None = None


class NewPassword(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(min_length=1, max_length=200)


@router.get("/staff", tags=_T, summary="Staff accounts (JSON, CSV, XLSX)")
async def staff_list(
    fmt: Format = Query("json", alias="format"),
    runtime: Runtime = Depends(get_runtime),
    who: StaffPrincipal = Depends(_admin),
) -> Response:
    accounts = await StaffAdmin(runtime.db).list(actor_of(who))
    cols = ["username", "display_name", "role", "province_code", "disabled", "created_at"]
    table = Table(cols, ["Tên đăng nhập", "Họ tên", "Vai trò", "Mã tỉnh", "Đã khoá", "Tạo lúc"])
    for a in accounts:
        row = _account(a)
        table.rows.append([row[k] for k in cols])
    return table_response(table, fmt, "tai-khoan-can-bo")


@router.post("/staff", tags=_T, status_code=201, summary="Create a staff account")
async def staff_create(
    body: NewStaff,
    runtime: Runtime = Depends(get_runtime),
    who: StaffPrincipal = Depends(_admin),
) -> dict[str, Any]:
    account = await StaffAdmin(runtime.db).create(
        actor_of(who),
        body.username,
        body.password,
        body.role,
        body.province_code,
        body.display_name,
    )
    await _audit(
        runtime,
        who,
        "staff.create",
        account.username,
        {"role": account.role, "province": account.province_code},
    )
    return _account(account)


@router.patch(
    "/staff/{username}", tags=_T, summary="Change role, province, name; disable or enable"
)
async def staff_change(
    username: str,
    body: StaffPatch,
    runtime: Runtime = Depends(get_runtime),
    who: StaffPrincipal = Depends(_admin),
) -> dict[str, Any]:
    change = StaffChange(body.role, body.province_code, body.display_name, body.disabled)
    account = await StaffAdmin(runtime.db).change(actor_of(who), username, change)
    await _audit(runtime, who, "staff.change", account.username, body.model_dump(exclude_none=True))
    return _account(account)


@router.post("/staff/{username}/password", tags=_T, summary="Reset a staff account's password")
async def staff_password(
    username: str,
    body: NewPassword,
    runtime: Runtime = Depends(get_runtime),
    who: StaffPrincipal = Depends(_admin),
) -> dict[str, str]:
    await StaffAdmin(runtime.db).reset_password(actor_of(who), username, body.password)
    await _audit(runtime, who, "staff.password_reset", username.lower(), {})
    return {"username": username.lower(), "status": "password reset"}


# --- site credentials --------------------------------------------------------------------


@router.get("/sites", tags=_T, summary="Sites with their credential state (JSON, CSV, XLSX)")
async def site_credentials(
    q: str = Query("", max_length=100),
    province_id: int | None = Query(None),
    state: CredentialState = Query("all"),
    limit: int = Query(500, ge=1, le=20000),
    fmt: Format = Query("json", alias="format"),
    runtime: Runtime = Depends(get_runtime),
    who: StaffPrincipal = Depends(_credentials),
) -> Response:
    rows = await list_credentials(
        runtime.db, actor_of(who), q=q, province_id=province_id, state=state, limit=limit
    )
    hub = runtime.services.get("presence")
    cols = [
        "code",
        "name",
        "kind",
        "province_code",
        "province_name",
        "state",
        "version",
        "issued_at",
        "online",
    ]
    table = Table(
        cols,
        [
            "Mã",
            "Tên điểm cầu",
            "Cấp",
            "Mã tỉnh",
            "Tỉnh/thành",
            "Mã truy cập",
            "Lần cấp",
            "Cấp lúc",
            "Đang kết nối",
        ],
    )
    for r in rows:
        online = bool(hub.is_online(r.site_id)) if hub is not None else None
        table.rows.append(
            [
                r.code,
                r.name,
                r.kind,
                r.province_code,
                r.province_name,
                r.state,
                r.version,
                _iso(r.issued_at),
                online,
            ]
        )
    return table_response(table, fmt, "ma-diem-cau")


@router.post(
    "/sites/{code}/sheet",
    tags=_T,
    summary="Issue a new credential and return the site's printable sheet with its QR code",
)
async def site_sheet(
    code: str,
    runtime: Runtime = Depends(get_runtime),
    who: StaffPrincipal = Depends(_credentials),
) -> dict[str, Any]:
    """The old credential stops working at once and the site's live session is closed."""
    scope = who.province_id if who.role == "province_officer" else None
    site = await directory.site_detail(runtime.db, code, province_scope=scope)
    new_code = await rotate_site(runtime.db, runtime.key, code)
    await _audit(runtime, who, "site.credential.rotate", code, {"sheet": True})
    hub = runtime.services.get("presence")
    if hub is not None:
        await hub.credentials_changed([site.id])
    link = join_link(runtime.settings.resolved_public_url(), new_code)
    info = await page_services(runtime).sites.get(site.id)
    return {
        "site_code": code,
        "site_name": site.name,
        "province_name": info.province_name if info else "",
        "join_code": new_code,
        "join_link": link,
        "qr_svg": _qr_document(link),
    }


# --- indicator schemas -------------------------------------------------------------------


@router.post("/schemas", tags=_T, status_code=201, summary="Add an indicator schema (JSON body)")
async def schema_add(
    request: Request,
    runtime: Runtime = Depends(get_runtime),
    who: StaffPrincipal = Depends(_admin),
) -> Response:
    """The body is the schema document; a refusal lists every problem by field."""
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_SCHEMA_BYTES:
            raise Invalid(f"schema: larger than {MAX_SCHEMA_BYTES // 1024} KB", code="too_big")
    try:
        data = json.loads(bytes(raw).decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Invalid(f"schema: not JSON ({exc})", code="bad_json") from None
    try:
        schema = await page_services(runtime).center.custom_schemas.add(actor_of(who), data)
    except SchemaRefused as exc:
        return JSONResponse(
            {
                "error": {
                    "code": exc.code,
                    "message": exc.message,
                    "details": [e.public() for e in exc.errors],
                }
            },
            status_code=422,
        )
    await _audit(runtime, who, "schema.add", schema.key, {"indicators": len(schema.indicators)})
    return JSONResponse(schema.public(), status_code=201)


@router.get("/schemas/{key}", tags=_T, summary="A schema's indicators as a table (JSON, CSV, XLSX)")
async def schema_table(
    key: str,
    fmt: Format = Query("json", alias="format"),
    runtime: Runtime = Depends(get_runtime),
    _who: StaffPrincipal = Depends(_staff),
) -> Response:
    schema = page_services(runtime).center.schemas.get(key)
    return table_response(indicators_table(schema), fmt, f"mau-{schema.key}")


# --- saved site groups -------------------------------------------------------------------


@router.get("/site-groups", tags=_T, summary="Saved site groups as a table (JSON, CSV, XLSX)")
async def group_table(
    fmt: Format = Query("json", alias="format"),
    runtime: Runtime = Depends(get_runtime),
    _who: StaffPrincipal = Depends(_staff),
) -> Response:
    """The same groups as ``GET /api/site-groups`` (every staff member sees them)."""
    cols = ["id", "name", "description", "site_count", "updated_at"]
    table = Table(cols, ["Số", "Tên nhóm", "Mô tả", "Số điểm cầu", "Cập nhật lúc"])
    meetings = runtime.services.get("meetings")
    if not isinstance(meetings, MeetingService):
        raise NotFound("the meetings service is not running in this server", code="no_meetings")
    for g in await meetings.groups.list_groups():
        table.rows.append([g.id, g.name, g.description, g.site_count, _iso(g.updated_at)])
    return table_response(table, fmt, "nhom-diem-cau")
