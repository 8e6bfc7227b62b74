"""No page the server sends references another host: it must work on a closed network.

Every HTML page (the static pages, the site terminal's join path, /docs and
its OAuth redirect page, a printable attendance report) is parsed: each URL in an
attribute that loads or links something, and each URL in inline scripts and
styles, must be relative or on the server's own host. Every script, stylesheet
and icon those pages load is fetched (it must exist), and so is every file of the
web package: their code (comments aside) must name no other host either. The
vendor Swagger UI bundle is minified third-party code whose strings name spec and
licence URLs it never loads; what it loads is checked in a real browser instead
(tests/test_web_console.py records every request of /docs and fails on another host).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

from diemcau.directory.records import UnitRecord
from tests.api_support import ApiEnv, api_env

TREE = [
    UnitRecord("VN", "Việt Nam", "country"),
    UnitRecord("01", "Thành phố Hà Nội", "province", "Thành phố", "VN", 21.03, 105.85),
    UnitRecord("00004", "Phường Ba Đình", "commune", "Phường", "01", 21.035, 105.834),
    UnitRecord("79", "Thành phố Hồ Chí Minh", "province", "Thành phố", "VN", 10.78, 106.70),
]
HOST = "test"  # the httpx client's base URL host (api_env)

# Attributes whose value is a URL the browser loads, submits to or links to.
_URL_ATTRS = {"href", "src", "action", "formaction", "poster", "data", "background", "cite"}
# http(s)/ws(s) URLs, and protocol-relative ones opening a string or url(...), inside
# code or CSS (a bare "//" inside base64 data is neither).
_URL_IN_TEXT = re.compile(
    r"""(?:\b(?:https?|wss?):|(?<=["'`(=\s]))//([A-Za-z0-9.\-]+(?::\d+)?)(?=[/'"`)\s]|$)"""
)
# Namespace identifiers that are never fetched (SVG, XLink, XHTML).
_NAMESPACES = {"www.w3.org"}


class _Page(HTMLParser):
    """The URLs an HTML page refers to, and its inline script and style text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[tuple[str, str]] = []  # (tag.attr, url)
        self.assets: list[str] = []  # scripts, stylesheets and icons it loads
        self.scripts: list[str] = []  # inline script text
        self.styles: list[str] = []  # inline style text and style attributes
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        for key, value in values.items():
            if key in _URL_ATTRS or key.endswith(":href"):
                self.urls.append((f"{tag}.{key}", value))
            elif key == "srcset":
                self.urls += [(f"{tag}.srcset", part.split()[0]) for part in value.split(",")]
            elif key == "style":
                self.styles.append(value)
        if tag == "meta" and values.get("http-equiv", "").lower() == "refresh":
            self.urls.append(("meta.refresh", values.get("content", "").partition("url=")[2]))
        if tag == "script" and values.get("src"):
            self.assets.append(values["src"])
        if tag == "link" and values.get("href"):
            self.assets.append(values["href"])
        self._in = tag if tag in ("script", "style") else None

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "script":
            self.scripts.append(data)
        elif self._in == "style":
            self.styles.append(data)

    def inline_hosts(self) -> set[str]:
        """Other hosts named in inline scripts (comments aside) and styles."""
        found = [_other_hosts(_strip_js_comments(t)) for t in self.scripts]
        found += [_other_hosts(_strip_css_comments(t)) for t in self.styles]
        return set().union(*found)


def _strip_js_comments(code: str) -> str:
    """`code` without // and /* */ comments; strings (', ", `) are kept whole."""
    out: list[str] = []
    i, n = 0, len(code)
    while i < n:
        ch = code[i]
        if ch in "'\"`":
            j = i + 1
            while j < n and code[j] != ch:
                j += 2 if code[j] == "\\" else 1
            out.append(code[i : j + 1])
            i = j + 1
        elif code.startswith("//", i):
            i = code.find("\n", i)
            i = n if i < 0 else i
        elif code.startswith("/*", i):
            end = code.find("*/", i + 2)
            i = n if end < 0 else end + 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _strip_css_comments(css: str) -> str:
    return re.sub(r"/\*.*?\*/", "", css, flags=re.S)


def _other_hosts(text: str) -> set[str]:
    hosts = {m.group(1).split(":")[0].lower() for m in _URL_IN_TEXT.finditer(text)}
    return {h for h in hosts if h and h != HOST and h not in _NAMESPACES}


def _foreign(url: str) -> bool:
    parts = urlsplit(url.strip())
    if parts.scheme in ("", "data", "blob", "javascript", "mailto", "tel") and not parts.netloc:
        return False
    return (parts.hostname or "") != HOST


@pytest.fixture
async def env(sqlite_url: str) -> AsyncIterator[ApiEnv]:
    async with api_env(sqlite_url, TREE, ("00004",)) as e:
        yield e


async def _report_page(env: ApiEnv) -> str:
    chair = await env.login("chair")
    body = {"title": "Họp thử", "invite": {"everyone": True}}
    r = await env.client.post("/api/meetings", json=body, headers=chair)
    mid = r.json()["id"]
    await env.client.post(f"/api/meetings/{mid}/start", headers=chair)
    await env.client.post(f"/api/meetings/{mid}/end", headers=chair)
    r = await env.client.get(f"/api/meetings/{mid}/attendance/report.html", headers=chair)
    assert r.status_code == 200 and "BÁO CÁO ĐIỂM DANH" in r.text
    return r.text


PAGES = (
    "/",
    "/site",
    "/join",
    "/chair",
    "/dashboard",
    "/directives",
    "/reports",
    "/charts",
    "/alerts",
    "/admin",
    "/docs",
    "/docs/oauth2-redirect",
)


async def test_no_page_or_asset_references_another_host(env: ApiEnv) -> None:
    c = env.client
    pages: dict[str, str] = {}
    for path in PAGES:
        r = await c.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), path
        pages[path] = r.text
    pages["attendance report"] = await _report_page(env)
    assert (await c.get("/redoc")).status_code == 404  # not offered: it loads a CDN logo

    problems: list[str] = []
    assets: set[str] = set()
    for name, html in pages.items():
        page = _Page()
        page.feed(html)
        problems += [f"{name}: {where}={url}" for where, url in page.urls if _foreign(url)]
        problems += [f"{name}: inline {h}" for h in sorted(page.inline_hosts())]
        base = name if name.startswith("/") else "/api/meetings/1/attendance/report.html"
        assets |= {urlsplit(urljoin(f"http://{HOST}{base}", a)).path for a in page.assets}
    docs = pages["/docs"]
    assert "/static-offline-docs/swagger-ui-bundle.js" in docs and "cdn" not in docs.lower()
    assert '"validatorUrl": null' in docs  # no badge fetched from the online validator

    static = Path(str(resources.files("diemcau.web") / "static"))
    own = {f"/static/{p.name}" for p in static.iterdir() if p.is_file()}
    assert {"/static/favicon.svg", "/static/style.css", "/static/site.js"} <= own
    assert {"/static/favicon.svg", "/static/style.css"} <= assets
    for path in sorted(assets | own | {"/favicon.ico"}):
        r = await c.get(path)
        assert r.status_code == 200, path
        if path.endswith(".js") and path in own:
            hosts = _other_hosts(_strip_js_comments(r.text))
        elif path.endswith((".css", ".svg", ".ico")):
            hosts = _other_hosts(_strip_css_comments(r.text))
        elif path.endswith(".html"):
            page = _Page()
            page.feed(r.text)
            hosts = {urlsplit(u).hostname or "" for _, u in page.urls if _foreign(u)}
            hosts |= page.inline_hosts()
        else:
            continue  # the vendor script: see the module docstring
        problems += [f"{path}: {h}" for h in sorted(hosts)]
    assert problems == []


def test_the_checker_sees_what_it_must() -> None:
    """The parser and scanners flag the ways a page could reach another host."""
    page = _Page()
    page.feed(
        '<link rel="stylesheet" href="https://cdn.example/x.css">'
        '<script src="//cdn.example/a.js"></script><img srcset="/a.png 1x, http://x.example/b 2x">'
        "<style>body{background:url(https://img.example/b.png)}"
        "i{background:url(//font.example/f.woff) url(data:image/png;base64,AA//zz+/)}</style>"
        "<script>fetch('https://api.example/v1')</script>"
        '<a href="/chair">ok</a><svg xmlns="http://www.w3.org/2000/svg"></svg>'
    )
    flagged = [u for _, u in page.urls if _foreign(u)]
    assert flagged == ["https://cdn.example/x.css", "//cdn.example/a.js", "http://x.example/b"]
    assert page.inline_hosts() == {"img.example", "font.example", "api.example"}
    code = (
        "// see https://docs.example/x\n"
        "const u = 'wss://relay.example:8989/janus'; /* http://c.example/ */"
    )
    assert _other_hosts(_strip_js_comments(code)) == {"relay.example"}
    assert _other_hosts("const ns = 'http://www.w3.org/2000/svg';") == set()
