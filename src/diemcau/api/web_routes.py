"""The web pages (site terminal, chair console, dashboard) and the data only they need.

These routes serve the pages at short, printable paths (join links are
``{base}/join#<site code>:<secret>``: the part after ``#`` never leaves the
browser, so the secret is not written into any access log); each page is its own
file inside the shell they share (`diemcau.api.page_shell`), put together at the
page's first request and kept for the process's life. The two JSON endpoints
feed the dashboard map: every site's position as parallel arrays, and the
current presence state as two id lists, which the page polls when the staff
stream is not reachable.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Awaitable, Callable, Mapping
from functools import cache
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from diemcau.accounts.service import SitePrincipal
from diemcau.actors import Actor
from diemcau.api.deps import get_runtime, require_site, site_actor, staff_actor
from diemcau.api.page_shell import PAGES, render_page, static_file
from diemcau.api.public_urls import presence_url
from diemcau.directory.geo import site_geo
from diemcau.errors import Conflict, Forbidden, NotFound
from diemcau.media.orchestrator import MediaError, MediaOrchestrator
from diemcau.media.rights import Holder
from diemcau.records import JsonObject
from diemcau.runtime import Runtime

__all__ = ["router", "PAGES"]

router = APIRouter(tags=["web"])

_staff = staff_actor()

# Pages change with the package; a browser must not keep a stale copy across an
# upgrade, while a commune on a slow link still revalidates cheaply (ETag).
_NO_STALE = {"Cache-Control": "no-cache"}


@cache
def _rendered(path: str) -> tuple[bytes, str]:
    """A page's bytes and entity tag, made once per process (the files ship with it)."""
    body = render_page(path).encode("utf-8")
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _page(path: str) -> Callable[[Request], Awaitable[Response]]:
    async def handler(request: Request) -> Response:
        body, etag = _rendered(path)
        headers = {**_NO_STALE, "ETag": etag}
        asked = request.headers.get("if-none-match", "").split(",")
        if etag in {tag.strip().removeprefix("W/") for tag in asked}:
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="text/html; charset=utf-8", headers=headers)

    return handler


for _path in PAGES:
    router.add_api_route(_path, _page(_path), methods=["GET"], include_in_schema=False)


@router.get("/favicon.ico", include_in_schema=False)
async def favicon() -> FileResponse:
    """The pages declare their SVG icon; browsers and tools still ask for /favicon.ico."""
    return FileResponse(static_file("favicon.svg"), media_type="image/svg+xml", headers=_NO_STALE)


@router.get("/api/web/config", summary="Settings the pages need: site socket URL, map tiles")
async def web_config(runtime: Annotated[Runtime, Depends(get_runtime)]) -> JsonObject:
    """Where the site terminal opens its session, and the optional map tile server.

    Sites may sit on closed government networks, so the map works without tiles; a
    deployment with its own tile server sets ``DIEMCAU_TILE_URL``
    (``https://tiles.example/{z}/{x}/{y}.png``).
    """
    url = presence_url(runtime)
    # A standby pair: every server's socket and base URL, in the order to try them.
    return {
        "presence_url": url,
        "presence_urls": list(runtime.presence.config.urls) or [url],
        "servers": list(runtime.settings.servers),
        "tile_url": os.environ.get("DIEMCAU_TILE_URL", ""),
    }


@router.get("/api/web/geo", summary="Every site's position for the map, as parallel arrays")
async def geo(
    runtime: Annotated[Runtime, Depends(get_runtime)],
    actor: Annotated[Actor, Depends(_staff)],
) -> JSONResponse:
    data = await site_geo(runtime.sites, province_scope=actor.scope())
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
    actor: Annotated[Actor, Depends(_staff)],
) -> JsonObject:
    """Ids of online and degraded sites; every other site is offline (or never seen).

    ``available`` is false when no presence service runs in this process, so the
    page shows "unknown" instead of a country full of false "offline" points.
    """
    hub = runtime.presence
    if not hub.running:
        return {"available": False, "online": [], "degraded": []}
    visible: set[int] | None = None
    scope = actor.scope()
    if scope is not None:
        mine = await runtime.sites.in_province(scope, include_revoked=True)
        visible = {site.id for site in mine}
    online: list[int] = []
    degraded: list[int] = []
    for site_id in sorted(hub.online_site_ids()):
        if visible is not None and site_id not in visible:
            continue
        (degraded if hub.site_state(site_id).state == "degraded" else online).append(site_id)
    return {"available": True, "online": online, "degraded": degraded}


# --- media grants for the pages -------------------------------------------------------------
#
# The browser pages talk to Janus themselves (a relay for a site, central for the
# chair, any relay for a spot-check); these routes hand them short-lived, scoped
# grants from the media orchestrator (`Runtime.media`), after the
# same role checks as the rest of the API. What each grant lets its holder do in
# Janus is docs/media.md, "Who may publish and watch".

_controllers = staff_actor("admin", "chair", "operator")


def _media(runtime: Runtime) -> MediaOrchestrator:
    media = runtime.media
    if media is None:
        raise NotFound("no media service runs in this server", code="no_media")
    return media


async def _grant(call: Awaitable[Mapping[str, object]]) -> JsonObject:
    try:
        grant = await call
    except MediaError as exc:
        raise Conflict(str(exc), code="no_media_grant") from exc
    return dict(grant)


@router.get("/api/site/media", tags=["media"], summary="This site's media grant (relay, rooms)")
async def site_media(
    runtime: Annotated[Runtime, Depends(get_runtime)],
    site: Annotated[Actor, Depends(site_actor)],
    principal: Annotated[SitePrincipal, Depends(require_site)],
) -> JsonObject:
    """Where this site publishes its camera and which program feeds it plays.

    The program is the one of the live meeting holding the site (if any); the
    site's own feed is left out of it, so a speaker never hears itself. The grant
    is for the credential the caller proved: its publish token is worth nothing
    once that credential is rotated or revoked.
    """
    assert site.site_id is not None  # a site actor always has its id
    media = _media(runtime)
    cred = principal.credential_version
    live = runtime.meetings.store.live_site_meeting.get(site.site_id)
    if live is not None and str(live) in media.meetings:
        return await _grant(media.site_media_grant(site.name, live, credential=cred))
    if media.meetings:
        # The orchestrator would name another meeting's program room in the token.
        raise Conflict(
            "a program is running, but not one this site takes part in", code="not_in_program"
        )
    return await _grant(media.site_media_grant(site.name, credential=cred))


@router.get("/api/media/chair", tags=["media"], summary="The chair console's media grant")
async def chair_media(
    runtime: Annotated[Runtime, Depends(get_runtime)],
    actor: Annotated[Actor, Depends(_controllers)],
    meeting_id: Annotated[int, Query(ge=1)],
) -> JsonObject:
    """Publish the chair's camera at central; watch the program's floor speakers there.

    Only the meeting's chair, one of its delegates or an admin get it: the grant
    publishes the chair feed every site of the meeting plays.
    """
    await runtime.meetings.lifecycle.require_control(actor, meeting_id, "publish as its chair")
    media = _media(runtime)
    if str(meeting_id) not in media.meetings:
        raise NotFound(f"no program runs for meeting {meeting_id}", code="no_program")
    return dict(media.chair_media_grant(meeting_id, holder=Holder.staff(actor.name)))


@router.get("/api/media/spot/{site_code}", tags=["media"], summary="Spot-check one site's feed")
async def spot_media(
    site_code: Annotated[str, Path(max_length=48)],
    runtime: Annotated[Runtime, Depends(get_runtime)],
    actor: Annotated[Actor, Depends(_staff)],
) -> JsonObject:
    """Subscribe the console to one site's own uplink on its relay, outside the program.

    A province officer may spot-check only the sites of its province.
    """
    scope = actor.scope()
    if scope is not None:
        site = await runtime.sites.find(site_code, reload_missing=True)
        if site is None or site.province_id != scope:
            raise Forbidden("this site is outside your province", code="out_of_scope")
    holder = Holder.staff(actor.name)
    grant = await _grant(_media(runtime).spot_check_grant(site_code, holder=holder))
    # Audited in the site's live meeting, and recorded at central if its policy says so.
    grant["recorded"] = await runtime.recording.on_spot_check(actor, site_code)
    return grant


class WallPage(BaseModel):
    """One page of the video wall: the sites whose feeds the console will show."""

    sites: list[str] = Field(min_length=1, max_length=36)


@router.post("/api/media/wall", tags=["media"], summary="Grants for one page of the video wall")
async def wall_media(
    body: WallPage,
    runtime: Annotated[Runtime, Depends(get_runtime)],
    actor: Annotated[Actor, Depends(_staff)],
) -> list[JsonObject]:
    """One grant per relay covering the page; paging asks again with the next page.

    A province officer's page may hold only its own province's sites.
    """
    scope = actor.scope()
    if scope is not None:
        known = await runtime.sites.by_codes(body.sites, reload_missing=True)
        mine = {code for code, site in known.items() if site.province_id == scope}
        outside = [c for c in body.sites if c not in mine]
        if outside:
            raise Forbidden(f"outside your province: {', '.join(outside[:5])}", code="out_of_scope")
    try:
        grants = await _media(runtime).wall_grant(body.sites, holder=Holder.staff(actor.name))
    except MediaError as exc:
        raise Conflict(str(exc), code="no_media_grant") from exc
    return [dict(g) for g in grants]
