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
from enum import Enum
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field

from diemcau.accounts.credential_list import CredentialState, list_credentials
from diemcau.accounts.service import StaffAccount
from diemcau.accounts.staff_admin import StaffAdmin, StaffChange
from diemcau.actors import Actor
from diemcau.api.bodies import StrictBody
from diemcau.api.deps import RuntimeDep, StaffDep, staff_actor
from diemcau.api.tables import Format, table_response
from diemcau.audit import record_action
from diemcau.command.exports import Cell, Table
from diemcau.command.schema_store import MAX_SCHEMA_BYTES, SchemaRefused
from diemcau.command.schema_tables import indicators_table
from diemcau.errors import Invalid
from diemcau.records import JsonObject, iso

__all__ = ["router"]

router = APIRouter(prefix="/api/admin")

_Admin = Annotated[Actor, Depends(staff_actor("admin"))]
_Credentials = Annotated[Actor, Depends(staff_actor("admin", "operator", "province_officer"))]

_T: list[str | Enum] = ["administration"]


def _qr_document(data: str) -> str:
    """A standalone SVG document of `data`'s QR code (error correction M), for an <img>."""
    import segno  # loaded on the first QR code asked for, not at every server's start

    buf = io.BytesIO()
    segno.make(data, error="m", boost_error=False, micro=False).save(
        buf, kind="svg", xmldecl=False, svgns=True, scale=8, border=4, dark="#000"
    )
    return buf.getvalue().decode()


def _account(a: StaffAccount) -> dict[str, Cell]:
    return {
        "username": a.username,
        "display_name": a.display_name,
        "role": a.role,
        "province_id": a.province_id,
        "province_code": a.province_code,
        "disabled": a.disabled,
        "created_at": iso(a.created_at),
    }


# --- staff accounts ----------------------------------------------------------------------


class NewStaff(StrictBody):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=200)
    role: str = Field(min_length=1, max_length=32)
    province_code: str | None = Field(None, max_length=32)
    display_name: str = Field("", max_length=200)


class StaffPatch(StrictBody):
    role: str | None = Field(None, max_length=32)
    province_code: str | None = Field(None, max_length=32, description='"" removes it')
    display_name: str | None = Field(None, max_length=200)
    disabled: bool | None = None


class NewPassword(StrictBody):
    password: str = Field(min_length=1, max_length=200)


@router.get("/staff", tags=_T, summary="Staff accounts (JSON, CSV, XLSX)")
async def staff_list(
    runtime: RuntimeDep,
    actor: _Admin,
    fmt: Format = Query("json", alias="format"),
) -> Response:
    accounts = await StaffAdmin(runtime.db).list(actor)
    cols = ["username", "display_name", "role", "province_code", "disabled", "created_at"]
    table = Table(cols, ["Tên đăng nhập", "Họ tên", "Vai trò", "Mã tỉnh", "Đã khoá", "Tạo lúc"])
    for a in accounts:
        row = _account(a)
        table.rows.append([row[k] for k in cols])
    return table_response(table, fmt, "tai-khoan-can-bo")


@router.post("/staff", tags=_T, status_code=201, summary="Create a staff account")
async def staff_create(body: NewStaff, runtime: RuntimeDep, actor: _Admin) -> dict[str, Cell]:
    account = await StaffAdmin(runtime.db).create(
        actor,
        body.username,
        body.password,
        body.role,
        body.province_code,
        body.display_name,
    )
    await record_action(
        runtime.db,
        actor,
        "staff.create",
        target=account.username,
        details={"role": account.role, "province": account.province_code},
    )
    return _account(account)


@router.patch(
    "/staff/{username}", tags=_T, summary="Change role, province, name; disable or enable"
)
async def staff_change(
    username: str,
    body: StaffPatch,
    runtime: RuntimeDep,
    actor: _Admin,
) -> dict[str, Cell]:
    change = StaffChange(body.role, body.province_code, body.display_name, body.disabled)
    account = await StaffAdmin(runtime.db).change(actor, username, change)
    details = body.model_dump(exclude_none=True)
    await record_action(runtime.db, actor, "staff.change", target=account.username, details=details)
    return _account(account)


@router.post("/staff/{username}/password", tags=_T, summary="Reset a staff account's password")
async def staff_password(
    username: str,
    body: NewPassword,
    runtime: RuntimeDep,
    actor: _Admin,
) -> dict[str, str]:
    await StaffAdmin(runtime.db).reset_password(actor, username, body.password)
    await record_action(runtime.db, actor, "staff.password_reset", target=username.lower())
    return {"username": username.lower(), "status": "password reset"}


# --- site credentials --------------------------------------------------------------------


@router.get("/sites", tags=_T, summary="Sites with their credential state (JSON, CSV, XLSX)")
async def site_credentials(
    runtime: RuntimeDep,
    actor: _Credentials,
    q: str = Query("", max_length=100),
    province_id: int | None = Query(None),
    state: CredentialState = Query("all"),
    limit: int = Query(500, ge=1, le=20000),
    fmt: Format = Query("json", alias="format"),
) -> Response:
    rows = await list_credentials(
        runtime.db, actor, q=q, province_id=province_id, state=state, limit=limit
    )
    hub = runtime.presence
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
        online = hub.is_online(r.site_id)
        table.rows.append(
            [
                r.code,
                r.name,
                r.kind,
                r.province_code,
                r.province_name,
                r.state,
                r.version,
                iso(r.issued_at),
                online,
            ]
        )
    return table_response(table, fmt, "ma-diem-cau")


@router.post(
    "/sites/{code}/sheet",
    tags=_T,
    summary="Issue a new credential and return the site's printable sheet with its QR code",
)
async def site_sheet(code: str, runtime: RuntimeDep, actor: _Credentials) -> JsonObject:
    """The old credential stops working at once and the site's live session is closed."""
    issued = await runtime.credentials.rotate(actor, code, details={"sheet": True})
    info = await runtime.sites.find(code, reload_missing=True)
    return {
        "site_code": code,
        "site_name": info.name if info else "",
        "province_name": info.province_name if info else "",
        "join_code": issued.join_code,
        "join_link": issued.join_link,
        "qr_svg": _qr_document(issued.join_link),
    }


# --- indicator schemas -------------------------------------------------------------------


@router.post("/schemas", tags=_T, status_code=201, summary="Add an indicator schema (JSON body)")
async def schema_add(request: Request, runtime: RuntimeDep, actor: _Admin) -> Response:
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
        schema = await runtime.command.custom_schemas.add(actor, data)
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
    details = {"indicators": len(schema.indicators)}
    await record_action(runtime.db, actor, "schema.add", target=schema.key, details=details)
    return JSONResponse(schema.public(), status_code=201)


@router.get("/schemas/{key}", tags=_T, summary="A schema's indicators as a table (JSON, CSV, XLSX)")
async def schema_table(
    key: str,
    runtime: RuntimeDep,
    _actor: StaffDep,
    fmt: Format = Query("json", alias="format"),
) -> Response:
    schema = runtime.command.schemas.get(key)
    return table_response(indicators_table(schema), fmt, f"mau-{schema.key}")


# --- saved site groups -------------------------------------------------------------------


@router.get("/site-groups", tags=_T, summary="Saved site groups as a table (JSON, CSV, XLSX)")
async def group_table(
    runtime: RuntimeDep,
    _actor: StaffDep,
    fmt: Format = Query("json", alias="format"),
) -> Response:
    """The same groups as ``GET /api/site-groups`` (every staff member sees them)."""
    cols = ["id", "name", "description", "site_count", "updated_at"]
    table = Table(cols, ["Số", "Tên nhóm", "Mô tả", "Số điểm cầu", "Cập nhật lúc"])
    for g in await runtime.meetings.groups.list_groups():
        table.rows.append([g.id, g.name, g.description, g.site_count, iso(g.updated_at)])
    return table_response(table, fmt, "nhom-diem-cau")
