"""The pages' routes over the real app: pages, geo arrays, states, media grant refusals."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import httpx

from diemcau.api.page_shell import PAGES, render_page
from tests.browser import HeartbeatSite, live_server, wait_for

STATIC = Path(str(resources.files("diemcau.web") / "static"))


class _Tags(HTMLParser):
    """Every start tag of a page with its attributes, and the text of its <title>."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


def _dictionary() -> dict[str, list[str]]:
    """The pages' texts, key -> [Vietnamese, English], as i18n.js declares them."""
    source = (STATIC / "i18n.js").read_text(encoding="utf-8")
    table = source[source.index("const TEXTS = {") : source.index("\n};\n")]
    pairs = re.findall(r"^  (\w+): (\[.*\]),$", table, re.MULTILINE)
    lines = [line for line in table.splitlines()[1:] if not line.strip().startswith("//")]
    assert len(pairs) == len(lines)  # one key a line, nothing the server would miss
    return {key: json.loads(pair) for key, pair in pairs}


def test_every_key_has_both_languages() -> None:
    texts = _dictionary()
    assert len(texts) > 600
    bad = [
        k for k, v in texts.items() if len(v) != 2 or not all(isinstance(x, str) and x for x in v)
    ]
    assert bad == []
    assert texts["nav_dash"] == ["Bảng điều hành", "Dashboard"]


def test_each_page_is_its_own_file_inside_the_one_shell() -> None:
    """The shell around every page: its title, its heading, its link marked current,
    the controls the scripts look for, and the page's own file unchanged inside."""
    texts = _dictionary()
    for path, page in PAGES.items():
        html = render_page(path)
        own = (STATIC / page.file).read_text(encoding="utf-8")
        assert own in html and "<script" not in own, path
        assert html.startswith("<!doctype html>") and html.endswith("</body>\n</html>\n")
        parsed = _Tags()
        parsed.feed(html)
        scripts = [a["src"] for tag, a in parsed.tags if tag == "script"]
        assert scripts == [f"/static/{name}" for name in page.scripts], path
        assert all((STATIC / name).is_file() for name in page.scripts)
        vi_title = texts[page.title][0]
        assert parsed.title == (page.tab or f"{vi_title} — diemcau"), path
        ids = {a.get("id") for _, a in parsed.tags}
        assert "lang" in ids, path
        current = [a["href"] for tag, a in parsed.tags if tag == "a" and "aria-current" in a]
        keys = [str(a["data-i18n"]) for _, a in parsed.tags if a.get("data-i18n")]
        assert all(key in texts for key in keys), path
        if page.nav is None:  # the site terminal: its own header, no staff controls
            assert current == [] and "who" not in ids and "conn" in ids
            continue
        assert current == [path], path
        assert {"who", "logout"} <= ids and ("live" in ids) == page.live, path
        assert keys[0] == page.title and f">{vi_title}</h1>" in html, path
        nav = [k for k in keys if k.startswith("nav_")]
        assert nav == list(page.nav), path
        admin = [a for tag, a in parsed.tags if tag == "a" and a.get("href") == "/admin"]
        assert all(a.get("data-roles") == "admin" and "hidden" in a for a in admin), path


async def _token(api: httpx.AsyncClient, username: str, password: str) -> str:
    r = await api.post("/api/auth/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


async def test_pages_geo_states_and_scope(tmp_path: Path) -> None:
    async with (
        live_server(tmp_path, join_sites=("27004", "00004")) as srv,
        httpx.AsyncClient(base_url=srv.base_url, timeout=10) as api,
    ):
        for path, marker in (
            ("/", 'id="dir"'),
            ("/recordings", 'id="meetings"'),
            ("/inspection", "quick-h"),
            ("/join", "join-form"),
            ("/site", "join-form"),
            ("/chair", "wall-toggle"),
            ("/dashboard", "colorby"),
            ("/directives", "view-compose"),
            ("/reports", "prov-table"),
            ("/charts", "top-commune"),
            ("/alerts", "ack-dialog"),
            ("/admin", "pane-schemas"),
        ):
            r = await api.get(path)
            assert r.status_code == 200 and marker in r.text, path
            assert r.headers["cache-control"] == "no-cache"
            assert r.headers["content-type"] == "text/html; charset=utf-8"
            # Revalidation is cheap: the same tag (alone, weak, in a list) answers 304
            # with no body; another tag, or none, gets the page again.
            tag = r.headers["etag"]
            for asked in (tag, "W/" + tag, f'"other", {tag}'):
                again = await api.get(path, headers={"If-None-Match": asked})
                assert again.status_code == 304 and again.content == b"", (path, asked)
                assert again.headers["etag"] == tag
            for asked in ('"other"', tag[:-2] + '"', "*x"):
                again = await api.get(path, headers={"If-None-Match": asked})
                assert again.status_code == 200 and again.text == r.text, (path, asked)
        cfg = (await api.get("/api/web/config")).json()
        hub = srv.runtime.presence
        assert cfg["presence_url"] == hub.url
        # Never from the request's Host header: anyone may send any (issue 12, item 8;
        # tests/test_browser_hardening.py covers the declared public URL).
        cfg = (await api.get("/api/web/config", headers={"Host": "diemcau.local"})).json()
        assert cfg["presence_url"] == hub.url

        # Geo: parallel arrays, one entry per site, provinces by index.
        assert (await api.get("/api/web/geo")).status_code == 401  # no token
        chair = {"Authorization": "Bearer " + await _token(api, "chair", srv.staff_password)}
        geo = (await api.get("/api/web/geo", headers=chair)).json()
        n = len(geo["ids"])
        assert n == 11  # the chair site, 2 provinces, 8 communes
        for key in ("codes", "names", "kinds", "province", "lat", "lon"):
            assert len(geo[key]) == n, key
        i = geo["codes"].index("27004")
        assert geo["names"][i] == "Xã Củ Chi" and (geo["lat"][i], geo["lon"][i]) == (
            10.974,
            106.493,
        )
        assert geo["provinces"][geo["province"][i]][1:] == ["79", "Thành phố Hồ Chí Minh"]
        assert geo["province"][geo["codes"].index("TW")] == -1

        # A province officer gets only its province; a site token is refused.
        hanoi = {"Authorization": "Bearer " + await _token(api, "hanoi", srv.staff_password)}
        mine = (await api.get("/api/web/geo", headers=hanoi)).json()
        assert sorted(mine["codes"]) == ["00004", "00008", "00091", "00256", "01"]
        assert [p[1] for p in mine["provinces"]] == ["01"]
        r = await api.post("/api/auth/site-login", json={"join_code": srv.join_codes["27004"]})
        site = {"Authorization": "Bearer " + r.json()["token"]}
        assert (await api.get("/api/web/geo", headers=site)).status_code == 403
        assert (await api.get("/api/web/states", headers=site)).status_code == 403

        # States (the polling fallback): connected sites, scoped like geo.
        beat = HeartbeatSite(hub.url, srv.join_codes["27004"])
        await beat.start()
        sid = geo["ids"][i]

        async def online() -> bool:
            body = (await api.get("/api/web/states", headers=chair)).json()
            return bool(body["available"] and sid in body["online"])

        await wait_for(online, timeout=5)
        scoped = (await api.get("/api/web/states", headers=hanoi)).json()
        assert scoped["online"] == [] and scoped["degraded"] == []
        await beat.close()


async def test_media_grants_refused_without_media_or_outside_scope(tmp_path: Path) -> None:
    async with (
        live_server(tmp_path, join_sites=("27004",)) as srv,
        httpx.AsyncClient(base_url=srv.base_url, timeout=10) as api,
    ):
        chair = {"Authorization": "Bearer " + await _token(api, "chair", srv.staff_password)}
        hanoi = {"Authorization": "Bearer " + await _token(api, "hanoi", srv.staff_password)}
        r = await api.post("/api/auth/site-login", json={"join_code": srv.join_codes["27004"]})
        site = {"Authorization": "Bearer " + r.json()["token"]}
        # No media service in this server: a clear 404, not a crash. The chair's grant
        # first asks whether the caller runs that meeting (there is no meeting 1).
        for method, path, headers, body, code in (
            ("GET", "/api/site/media", site, None, "no_media"),
            ("GET", "/api/media/chair?meeting_id=1", chair, None, "no_meeting"),
            ("GET", "/api/media/spot/27004", chair, None, "no_media"),
            ("POST", "/api/media/wall", chair, {"sites": ["27004"]}, "no_media"),
        ):
            r = await api.request(method, path, headers=headers, json=body)
            assert r.status_code == 404 and r.json()["error"]["code"] == code, path
        # Bad inputs: a province officer spot-checking another province, a site
        # asking for the chair's grant, a wall page too large, a missing meeting id.
        r = await api.get("/api/media/spot/27004", headers=hanoi)
        assert r.status_code == 403 and r.json()["error"]["code"] == "out_of_scope"
        r = await api.post("/api/media/wall", headers=hanoi, json={"sites": ["00004", "27004"]})
        assert r.status_code == 403
        assert (await api.get("/api/media/chair?meeting_id=1", headers=site)).status_code == 403
        assert (await api.get("/api/media/chair?meeting_id=1", headers=hanoi)).status_code == 403
        r = await api.post("/api/media/wall", headers=chair, json={"sites": ["x"] * 37})
        assert r.status_code == 422
        assert (await api.get("/api/media/chair", headers=chair)).status_code == 422
        assert (await api.get("/api/site/media", headers=chair)).status_code == 403
