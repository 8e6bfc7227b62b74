"""Directory browsing for staff: the unit tree with counts, search, unit and site detail.

A province officer sees only its own province; everything else is refused with 403.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from diemcau.accounts.service import StaffPrincipal, join_link, revoke_site, rotate_site
from diemcau.api.deps import get_runtime, province_scope, require_staff
from diemcau.directory import service
from diemcau.meetings.audit import record_audit
from diemcau.runtime import Runtime

__all__ = ["router"]

router = APIRouter(prefix="/api/directory", tags=["directory"])

_staff = require_staff()
_credential_admins = require_staff("admin", "operator", "province_officer")


class NewCredential(BaseModel):
    site_code: str
    join_code: str
    join_link: str


class Revoked(BaseModel):
    site_code: str
    credential_version: int
    sessions_closed: int


async def _close_live_sessions(runtime: Runtime, site_id: int) -> int:
    """Close the site's live session at once (the hub would notice within seconds)."""
    return len(await runtime.presence.credentials_changed([site_id]))


@router.get("/stats", summary="Number of units per level and of sites")
async def stats(
    runtime: Runtime = Depends(get_runtime), who: StaffPrincipal = Depends(_staff)
) -> dict[str, int]:
    return await service.stats(runtime.db, province_scope=province_scope(who))


@router.get("/tree", summary="Children of a unit (the country's provinces by default) with counts")
async def tree(
    parent: str | None = Query(None, max_length=32, description="parent unit code"),
    runtime: Runtime = Depends(get_runtime),
    who: StaffPrincipal = Depends(_staff),
) -> Any:
    return await service.children(runtime.db, parent, province_scope=province_scope(who))


@router.get("/search", summary="Find units and sites, with or without diacritics")
async def search(
    q: str = Query(..., min_length=1, max_length=100),
    limit: int = Query(20, ge=1, le=200),
    runtime: Runtime = Depends(get_runtime),
    who: StaffPrincipal = Depends(_staff),
) -> Any:
    return await service.search(runtime.db, q, limit=limit, province_scope=province_scope(who))


@router.get("/units/{code}", summary="One unit with its ancestors and counts")
async def unit(
    code: str, runtime: Runtime = Depends(get_runtime), who: StaffPrincipal = Depends(_staff)
) -> Any:
    return await service.unit_detail(runtime.db, code, province_scope=province_scope(who))


@router.get("/sites/{code}", summary="One site with its unit and credential state")
async def site(
    code: str, runtime: Runtime = Depends(get_runtime), who: StaffPrincipal = Depends(_staff)
) -> Any:
    return await service.site_detail(runtime.db, code, province_scope=province_scope(who))


@router.post(
    "/sites/{code}/rotate",
    response_model=NewCredential,
    summary="Issue a new credential to a site; the old one stops working at once",
)
async def rotate(
    code: str,
    runtime: Runtime = Depends(get_runtime),
    who: StaffPrincipal = Depends(_credential_admins),
) -> NewCredential:
    site = await service.site_detail(runtime.db, code, province_scope=province_scope(who))
    new_code = await rotate_site(runtime.db, runtime.key, code)
    async with runtime.db.session() as s:
        await record_audit(s, who, "site.credential.rotate", target=code)
    await _close_live_sessions(runtime, site.id)
    return NewCredential(
        site_code=code,
        join_code=new_code,
        join_link=join_link(runtime.settings.resolved_public_url(), new_code),
    )


@router.post(
    "/sites/{code}/revoke",
    response_model=Revoked,
    summary="Revoke a site's credential and close its live session",
)
async def revoke(
    code: str,
    runtime: Runtime = Depends(get_runtime),
    who: StaffPrincipal = Depends(_credential_admins),
) -> Revoked:
    site = await service.site_detail(runtime.db, code, province_scope=province_scope(who))
    version = await revoke_site(runtime.db, code)
    async with runtime.db.session() as s:
        await record_audit(s, who, "site.credential.revoke", target=code)
    closed = await _close_live_sessions(runtime, site.id)
    return Revoked(site_code=code, credential_version=version, sessions_closed=closed)
