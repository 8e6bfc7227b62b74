"""Media plane state for operators: node health and load, and which node serves a site."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from diemcau.actors import Actor
from diemcau.api.deps import RuntimeDep, StaffDep, staff_actor
from diemcau.directory import service
from diemcau.errors import NotFound
from diemcau.media.node_status import NodeStatus
from diemcau.media.orchestrator import MediaError, MediaOrchestrator
from diemcau.runtime import Runtime

__all__ = ["router"]

router = APIRouter(prefix="/api/media", tags=["media"])

_Ops = Annotated[Actor, Depends(staff_actor("admin", "operator", "chair"))]


class MediaStatus(BaseModel):
    enabled: bool
    nodes: list[NodeStatus]


class SiteNode(BaseModel):
    site_code: str
    node: str
    role: str
    up: bool


def _orchestrator(runtime: Runtime) -> MediaOrchestrator | None:
    return runtime.media


@router.get("/status", response_model=MediaStatus, summary="Every media node: health and load")
async def status(runtime: RuntimeDep, _who: _Ops) -> MediaStatus:
    orch = _orchestrator(runtime)
    if orch is None:
        return MediaStatus(enabled=False, nodes=[])
    return MediaStatus(enabled=True, nodes=orch.status())


@router.get(
    "/sites/{code}", response_model=SiteNode, summary="The media node serving a site right now"
)
async def site_node(code: str, runtime: RuntimeDep, actor: StaffDep) -> SiteNode:
    # The directory's own scoped lookup: NotFound, or Forbidden outside the officer's province.
    await service.site_detail(runtime.db, code, province_scope=actor.scope())
    orch = _orchestrator(runtime)
    if orch is None:
        raise NotFound("no media plane is running", code="no_media")
    try:
        node = orch.site_node(code)
    except MediaError as exc:
        raise NotFound(str(exc), code="not_placed") from exc
    return SiteNode(
        site_code=code, node=node.name, role=node.role, up=orch.registry.is_up(node.name)
    )
