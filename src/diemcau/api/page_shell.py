"""The pages as served: each page's own file inside the one shell they all share.

A page's file (``web/static/<page>.html``) holds only what is the page's own: its
``<main>`` (the site terminal's also its header and banners). The shell is written
once here: the head, the header bar with the heading, the navigation with the
current page marked, the live indicator, the language button, who is signed in,
and the page's scripts. It is filled in on the server, so a page shows its header
before any script runs; its Vietnamese comes from the dictionary the scripts use
(``static/i18n.js``, one ``key: ["Vietnamese", "English"],`` a line), and the
switch to English happens in the browser as for every other text (docs/ui.md).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from html import escape
from importlib import resources
from pathlib import Path

__all__ = ["PAGES", "WebPage", "render_page", "static_file"]

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


def static_file(name: str) -> Path:
    """A file shipped in ``web/static``."""
    return Path(str(resources.files("diemcau.web") / "static" / name))


@cache
def _vietnamese() -> dict[str, str]:
    """Every text key's Vietnamese, read from the pages' dictionary."""
    source = static_file("i18n.js").read_text(encoding="utf-8")
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
    parts.append(static_file(page.file).read_text(encoding="utf-8"))
    parts += [f'<script src="/static/{name}"></script>\n' for name in page.scripts]
    parts.append("</body>\n</html>\n")
    return "".join(parts)
