"""The web pages (site terminal, chair console, dashboard) and the data only they need.

The pages are static files; these routes serve them at short, printable paths
(join links are ``{base}/join#<site code>:<secret>``: the part after ``#`` never
leaves the browser, so the secret is not written into any access log). Each page
file holds only the page's own part; the shell every page shares (head, header
bar with the navigation, language button, who is signed in) is written once here
and put around it at the first request, with the page's title and current link
already in place, so a page shows its header without waiting for a script. The
Vietnamese of those texts comes from the one dictionary the scripts use
(``static/i18n.js``); a switch to English happens in the browser as before. The
two JSON endpoints feed the dashboard map: every site's position as parallel
arrays, and the current presence state as two id lists, which the page polls when
the staff stream is not reachable.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache
from html import escape
from importlib import resources
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from diemcau.accounts.service import SitePrincipal
from diemcau.actors import Actor
from diemcau.api.deps import get_runtime, require_site, site_actor, staff_actor
from diemcau.api.public_urls import presence_url
from diemcau.directory.geo import site_geo
from diemcau.errors import Conflict, Forbidden, NotFound
from diemcau.media.orchestrator import MediaError, MediaOrchestrator
from diemcau.media.rights import Holder
from diemcau.records import JsonObject
from diemcau.runtime import Runtime

__all__ = ["router", "PAGES", "render_page"]

router = APIRouter(tags=["web"])

_staff = staff_actor()

# The navigation's links: i18n key -> (path, the role that alone sees it, "" for all).
_LINKS = {
    "nav_dash": ("/dashboard", ""),
    "nav_chair": ("/chair", ""),
    "nav_insp": ("/inspection", ""),
    "nav_recordings": ("/recordings", ""),
    "nav_directives": ("/directives", ""),
    "nav_reports": ("/reports", ""),
    "nav_charts": ("/charts", ""),
    "nav_alerts": ("/alerts", ""),
    "nav_admin": ("/admin", "admin"),
    "nav_dir": ("/", ""),
}
_COMMAND_NAV = (
    "nav_dash",
    "nav_chair",
    "nav_insp",
    "nav_directives",
    "nav_reports",
    "nav_charts",
    "nav_alerts",
    "nav_admin",
    "nav_dir",
)
_RECORDINGS_NAV = (
    "nav_dash",
    "nav_chair",
    "nav_insp",
    "nav_recordings",
    "nav_directives",
    "nav_alerts",
    "nav_dir",
)
_PAGE_SCRIPTS = ("i18n.js", "common.js", "pages.js")


@dataclass(frozen=True)
class WebPage:
    """One page: the static file of its own part and what its shell shows around it.

    `nav` is None for the site terminal, whose file brings its own header (no
    navigation, no staff sign-in). `live` adds the live-stream indicator.
    """

    file: str
    title: str  # i18n key of the heading and of the tab title
    scripts: tuple[str, ...]
    nav: tuple[str, ...] | None = _COMMAND_NAV
    live: bool = True
    body_class: str = ""
    tab: str = ""  # the tab title when it is not "<heading> — diemcau"


_SITE = WebPage(
    "site.html",
    "site_title",
    ("i18n.js", "common.js", "janus.js", "quality.js", "standby.js", "follow.js", "site.js"),
    nav=None,
)

# Page path -> page. /join is the site terminal reached from a join link.
PAGES = {
    "/": WebPage(
        "index.html", "title", ("i18n.js", "directory.js"), live=False, tab="Điểm cầu — Danh bạ"
    ),
    "/site": _SITE,
    "/join": _SITE,
    "/chair": WebPage(
        "chair.html",
        "chair_title",
        ("i18n.js", "common.js", "janus.js", "inspect.js", "live.js", "map.js", "chair.js"),
        body_class="full",
    ),
    "/recordings": WebPage(
        "recordings.html",
        "rec_title",
        (*_PAGE_SCRIPTS, "recordings.js"),
        nav=_RECORDINGS_NAV,
        live=False,
    ),
    "/dashboard": WebPage(
        "dashboard.html",
        "dash_title",
        ("i18n.js", "common.js", "live.js", "map.js", "dashboard.js"),
        body_class="full",
    ),
    "/directives": WebPage("directives.html", "dirv_title", (*_PAGE_SCRIPTS, "directives.js")),
    "/reports": WebPage("reports.html", "rep_title", (*_PAGE_SCRIPTS, "reports.js")),
    "/charts": WebPage(
        "charts.html", "chr_title", (*_PAGE_SCRIPTS, "live.js", "map.js", "chart.js", "charts.js")
    ),
    "/alerts": WebPage("alerts.html", "alr_title", (*_PAGE_SCRIPTS, "alerts.js")),
    "/admin": WebPage("admin.html", "adm_title", (*_PAGE_SCRIPTS, "admin.js"), live=False),
    "/inspection": WebPage(
        "inspection.html",
        "insp_title",
        (*_PAGE_SCRIPTS, "janus.js", "inspect.js", "inspection.js"),
    ),
}

# Pages change with the package; a browser must not keep a stale copy across an
# upgrade, while a commune on a slow link still revalidates cheaply (ETag).
_NO_STALE = {"Cache-Control": "no-cache"}

_HEAD = """<!doctype html>
<html lang="vi">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/style.css">
</head>
<body{body_class}>
"""
_HEADER = """<header class="bar">
  <h1 data-i18n="{key}">{heading}</h1>
  <nav class="nav" aria-label="pages">
{links}
  </nav>
  <div class="spacer"></div>
{live}  <button id="lang" type="button" aria-label="Language / Ngôn ngữ">{lang}</button>
  <span id="who"></span>
  <button id="logout" type="button" hidden data-i18n="logout">{logout}</button>
</header>
"""
_LIVE = '  <span id="live" class="live" data-state="connecting" aria-live="polite"></span>\n'
_TEXT_LINE = re.compile(r"^\s+(\w+): (\[.*\]),$", re.MULTILINE)


def _static(name: str) -> FilePath:
    return FilePath(str(resources.files("diemcau.web") / "static" / name))


@cache
def _vietnamese() -> dict[str, str]:
    """Every text key's Vietnamese, read from the pages' dictionary (one ``key: [vi, en],``
    a line)."""
    source = _static("i18n.js").read_text(encoding="utf-8")
    return {key: str(json.loads(pair)[0]) for key, pair in _TEXT_LINE.findall(source)}


def _link(key: str, path: str) -> str:
    href, role = _LINKS[key]
    current = ' aria-current="page"' if href == path else ""
    roles = f' data-roles="{role}" hidden' if role else ""
    text = escape(_vietnamese()[key])
    return f'    <a href="{href}"{current} data-i18n="{key}"{roles}>{text}</a>'


def render_page(path: str) -> str:
    """The whole page served at `path`: the shared shell around the page's own file."""
    page = PAGES[path]
    vi = _vietnamese()
    heading = escape(vi[page.title])
    parts = [
        _HEAD.format(
            title=escape(page.tab) or f"{heading} — diemcau",
            body_class=f' class="{page.body_class}"' if page.body_class else "",
        )
    ]
    if page.nav is not None:
        header = _HEADER.format(
            key=page.title,
            heading=heading,
            links="\n".join(_link(key, path) for key in page.nav),
            live=_LIVE if page.live else "",
            lang=escape(vi["lang"]),
            logout=escape(vi["logout"]),
        )
        parts.append(header)
    parts.append(_static(page.file).read_text(encoding="utf-8"))
    parts += [f'<script src="/static/{name}"></script>\n' for name in page.scripts]
    parts.append("</body>\n</html>\n")
    return "".join(parts)


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
    return FileResponse(_static("favicon.svg"), media_type="image/svg+xml", headers=_NO_STALE)


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


async def _grant(call: Awaitable[JsonObject]) -> JsonObject:
    try:
        grant = await call
    except MediaError as exc:
        raise Conflict(str(exc), code="no_media_grant") from exc
    return grant


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
    return media.chair_media_grant(meeting_id, holder=Holder.staff(actor.name))


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
    return grants
