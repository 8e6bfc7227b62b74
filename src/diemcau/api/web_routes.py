"""The web pages (site terminal, chair console, dashboard) and the data only they need.

The pages are static files; these routes serve them at short, printable paths
(join links are ``{base}/join#<site code>:<secret>``: the part after ``#`` never
leaves the browser, so the secret is not written into any access log). The two
JSON endpoints feed the dashboard map: every site's position as parallel arrays,
and the current presence state as two id lists, which the page polls when the
staff stream is not reachable.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse, JSONResponse
from sqlalchemy import select

from diemcau.accounts.service import StaffPrincipal
from diemcau.api.deps import get_runtime, province_scope, require_staff
from diemcau.directory.geo import site_geo
from diemcau.runtime import Runtime
from diemcau.store.models import Site

__all__ = ["router", "PAGES"]

router = APIRouter(tags=["web"])

_staff = require_staff()

# Page path -> static file. /join is the site terminal reached from a join link.
PAGES = {
    "/site": "site.html",
    "/join": "site.html",
    "/chair": "chair.html",
    "/dashboard": "dashboard.html",
}

# Pages change with the package; a browser must not keep a stale copy across an
# upgrade, while a commune on a slow link still revalidates cheaply (ETag).
_NO_STALE = {"Cache-Control": "no-cache"}


def _static(name: str) -> Path:
    return Path(str(resources.files("diemcau.web") / "static" / name))


def _page(name: str) -> Any:
    async def handler() -> FileResponse:
        return FileResponse(_static(name), headers=_NO_STALE)

    return handler


for _path, _name in PAGES.items():
    router.add_api_route(_path, _page(_name), methods=["GET"], include_in_schema=False)


@router.get("/api/web/config", summary="Settings the pages need: site socket URL, map tiles")
async def web_config(runtime: Annotated[Runtime, Depends(get_runtime)]) -> dict[str, str]:
    """Where the site terminal opens its session, and the optional map tile server.

    The site-session socket is served on its own port (presence), so the page
    cannot guess it from its own address. Sites may sit on closed government
    networks, so the map works without tiles; a deployment with its own tile
    server sets ``DIEMCAU_TILE_URL`` (``https://tiles.example/{z}/{x}/{y}.png``).
    """
    hub = runtime.services.get("presence")
    return {
        "presence_url": str(hub.url) if hub is not None else "",
        "tile_url": os.environ.get("DIEMCAU_TILE_URL", ""),
    }


@router.get("/api/web/geo", summary="Every site's position for the map, as parallel arrays")
async def geo(
    runtime: Annotated[Runtime, Depends(get_runtime)],
    who: Annotated[StaffPrincipal, Depends(_staff)],
) -> JSONResponse:
    data = await site_geo(runtime.db, province_scope=province_scope(who))
    body = {
        "ids": data.ids,
        "codes": data.codes,
        "names": data.names,
        "kinds": data.kinds,
        "province": data.province,
        "lat": data.lat,
        "lon": data.lon,
        "provinces": data.provinces,
    }
    return JSONResponse(body, headers={"Cache-Control": "private, max-age=60"})


@router.get("/api/web/states", summary="Sites currently online or degraded (polling fallback)")
async def states(
    runtime: Annotated[Runtime, Depends(get_runtime)],
    who: Annotated[StaffPrincipal, Depends(_staff)],
) -> dict[str, Any]:
    """Ids of online and degraded sites; every other site is offline (or never seen).

    ``available`` is false when no presence service runs in this process, so the
    page shows "unknown" instead of a country full of false "offline" points.
    """
    hub = runtime.services.get("presence")
    if hub is None:
        return {"available": False, "online": [], "degraded": []}
    visible: set[int] | None = None
    scope = province_scope(who)
    if scope is not None:
        async with runtime.db.session() as session:
            rows = await session.scalars(select(Site.id).where(Site.province_id == scope))
            visible = set(rows)
    online: list[int] = []
    degraded: list[int] = []
    for site_id in sorted(hub.online_site_ids()):
        if visible is not None and site_id not in visible:
            continue
        state = getattr(hub.site_state(site_id), "state", "online")
        (degraded if str(state) == "degraded" else online).append(site_id)
    return {"available": True, "online": online, "degraded": degraded}
