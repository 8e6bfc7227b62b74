"""Directory browsing for staff: the unit tree with counts, search, unit and site detail.

A province officer sees only its own province; everything else is refused with 403.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from diemcau.actors import Actor
from diemcau.api.deps import RuntimeDep, StaffDep, staff_actor
from diemcau.directory import service
from diemcau.directory.schemas import SearchHit, SiteDetail, UnitDetail, UnitNode

__all__ = ["router"]

router = APIRouter(prefix="/api/directory", tags=["directory"])

_CredentialAdmins = Annotated[Actor, Depends(staff_actor("admin", "operator", "province_officer"))]


class NewCredential(BaseModel):
    site_code: str
    join_code: str
    join_link: str


class Revoked(BaseModel):
    site_code: str
    credential_version: int
    sessions_closed: int


@router.get("/stats", summary="Number of units per level and of sites")
async def stats(runtime: RuntimeDep, actor: StaffDep) -> dict[str, int]:
    return await service.stats(runtime.db, province_scope=actor.scope())


@router.get("/tree", summary="Children of a unit (the country's provinces by default) with counts")
async def tree(
    runtime: RuntimeDep,
    actor: StaffDep,
    parent: str | None = Query(None, max_length=32, description="parent unit code"),
) -> list[UnitNode]:
    return await service.children(runtime.db, parent, province_scope=actor.scope())


@router.get("/search", summary="Find units and sites, with or without diacritics")
async def search(
    runtime: RuntimeDep,
    actor: StaffDep,
    q: str = Query(..., min_length=1, max_length=100),
    limit: int = Query(20, ge=1, le=200),
) -> list[SearchHit]:
    return await service.search(runtime.db, q, limit=limit, province_scope=actor.scope())


@router.get("/units/{code}", summary="One unit with its ancestors and counts")
async def unit(code: str, runtime: RuntimeDep, actor: StaffDep) -> UnitDetail:
    return await service.unit_detail(runtime.db, code, province_scope=actor.scope())


@router.get("/sites/{code}", summary="One site with its unit and credential state")
async def site(code: str, runtime: RuntimeDep, actor: StaffDep) -> SiteDetail:
    return await service.site_detail(runtime.db, code, province_scope=actor.scope())


@router.post(
    "/sites/{code}/rotate",
    response_model=NewCredential,
    summary="Issue a new credential to a site; the old one stops working at once",
)
async def rotate(code: str, runtime: RuntimeDep, actor: _CredentialAdmins) -> NewCredential:
    issued = await runtime.credentials.rotate(actor, code)
    return NewCredential(
        site_code=issued.site_code, join_code=issued.join_code, join_link=issued.join_link
    )


@router.post(
    "/sites/{code}/revoke",
    response_model=Revoked,
    summary="Revoke a site's credential and close its live session",
)
async def revoke(code: str, runtime: RuntimeDep, actor: _CredentialAdmins) -> Revoked:
    done = await runtime.credentials.revoke(actor, code)
    return Revoked(
        site_code=done.site_code,
        credential_version=done.credential_version,
        sessions_closed=done.sessions_closed,
    )
