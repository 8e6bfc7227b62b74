"""Directory browsing for staff: the unit tree with counts, search, unit and site detail.

A province officer sees only its own province; everything else is refused with 403.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from diemcau.accounts.service import StaffPrincipal
from diemcau.api.deps import get_runtime, province_scope, require_staff
from diemcau.directory import service
from diemcau.runtime import Runtime

__all__ = ["router"]

router = APIRouter(prefix="/api/directory", tags=["directory"])

_staff = require_staff()


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
