"""The browser site terminal follows a standby takeover by itself, in a real Chromium.

The standby pair of docs/reliability.md on the lab (two ``diemcau serve --lease`` on
the control host's PostgreSQL, each on its own host and address, over TLS), and a site
terminal (`follow.js`):

- opened on the standby (a join link of the wrong server), it finds the active one
  and moves there by itself, online;
- in the meeting, its server killed (``kill -9``): it shows the switching banner,
  moves to the standby's address once that one serves, resumes its session there (a
  directive issued while it was away arrives through the resume) and enters the
  meeting again; the standby's staff API shows it online;
- the standby's host then cut off (no reset reaches the page) with the other server
  dead: it notices by the silence rule (20 s), stays where it is and probes the other
  server no faster than its backoff (it never moves to a server that does not say it
  serves); that server started again takes the lease and the page follows it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Page, Request, Route, async_playwright

from diemcau.accounts.service import join_link
from diemcau.api.pair_origins import origin_of
from diemcau.lab.browser import launch_chromium
from diemcau.lab.control_process import ControlProcess
from diemcau.lab.deployment import LabDeployment
from diemcau.lab.fault_stage import seed_sites
from diemcau.lab.network import Lab
from diemcau.lab.server import STAFF_PASSWORD
from diemcau.lab.standby_faults import make_pair
from diemcau.lab.trust import lab_tls
from diemcau.tls.context import spki_sha256
from tests.browser import shot, wait_for

# From the standby serving to the terminal online on it: the grace its session gives
# its own server (3 s), a probe, loading the page, logging in, opening the session.
FOLLOW_BOUND_S = 15.0

# Records every time the switching banner shows, on whichever server's page.
_WATCH_BANNER = """
document.addEventListener("DOMContentLoaded", () => {
  const b = document.getElementById("banner-switch");
  if (!b) return;
  const report = () => { if (!b.hidden) window.bannerSeen(location.origin, b.innerText); };
  new MutationObserver(report).observe(b, { attributes: true, childList: true, subtree: true });
  report();
});
"""


_PARSE_JS = """() => [
  "#%E0%A4%A:x&hops=3",
  "#a%26b:s&hops=99&meeting=-4&seqs=%5B1%5D&lang=fr",
  "#" + ServerFollow.target("https://x.example", { code: "7:s", seqs: { site: 3, bad: -1, s: "z" },
    meeting: 12, lang: "en", why: "standby" }, 1).split("#")[1],
  "#26734:x-Y_z",
].map((h) => ServerFollow.parse(h))"""


def _carried(
    code: str,
    *,
    hops: int = 0,
    seqs: dict[str, int] | None = None,
    meeting: int = 0,
    lang: str = "",
    why: str = "lost",
) -> dict[str, Any]:
    """What `ServerFollow.parse` should read."""
    return {"code": code, "hops": hops, "seqs": seqs, "meeting": meeting, "lang": lang, "why": why}


async def _staff(server: ControlProcess) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=server.base_url, timeout=15)
    r = await client.post("/api/auth/login", json={"username": "chair", "password": STAFF_PASSWORD})
    assert r.status_code == 200, r.text
    client.headers["Authorization"] = "Bearer " + r.json()["token"]
    return client


async def _count(items: list[float], n: int) -> bool:
    return len(items) >= n


async def _online(page: Page, origin: str) -> bool:
    if not page.url.startswith(origin + "/"):
        return False
    state = await page.evaluate("() => document.querySelector('#conn')?.dataset.state")
    return bool(state == "online")


async def test_the_site_terminal_follows_a_takeover(tmp_path: Path) -> None:
    with Lab(control_here=True, lans=()) as lab:
        dep = LabDeployment(
            lab,
            tmp_path / "lab",
            {"relay1": ("01",), "relay2": ("79",)},
            ca=lab_tls().ca,
            postgres=True,
        )
        dep.prepare()
        try:
            await dep.start_database()
            codes, ids = await seed_sites(dep.database_url, 1)
            (site_code, join_code), site_id = next(iter(codes.items())), next(iter(ids.values()))
            pair = make_pair(lab, dep, tmp_path, dep.database_url)
            try:
                await pair.active.start()
                await pair.active.wait_role("active")
                await pair.standby.start()
                await pair.standby.wait_role("standby", timeout=30)
                switch = lab.hosts["switch"]
                console: list[str] = []
                try:
                    await _follow(
                        pair.active,
                        pair.standby,
                        join_code,
                        site_code,
                        site_id,
                        lambda: switch.run("ip", "link", "set", "p-standby", "down"),
                        console,
                    )
                except Exception as exc:  # say what the page and the servers said
                    raise AssertionError(
                        f"{type(exc).__name__}: {exc}\npage console: {console[-15:]}\n"
                        f"active: {pair.active.log_tail(10)}\nstandby: {pair.standby.log_tail(10)}"
                    ) from exc
            finally:
                for server in (pair.standby, pair.active):
                    await server.stop()
        finally:
            await dep.stop()


async def _follow(
    active: ControlProcess,
    standby: ControlProcess,
    join_code: str,
    site_code: str,
    site_id: int,
    cut_link: Callable[[], object],
    console: list[str],
) -> None:
    a_origin, b_origin = origin_of(active.base_url), origin_of(standby.base_url)
    assert active.tls is not None and standby.tls is not None
    pins = [spki_sha256(active.tls.cert), spki_sha256(standby.tls.cert)]
    seen: list[tuple[str, str]] = []
    probes: list[float] = []
    async with async_playwright() as pw:
        browser = await launch_chromium(pw, pins)
        try:
            ctx = await browser.new_context(viewport={"width": 1280, "height": 720})
            await ctx.expose_function("bannerSeen", lambda o, text: seen.append((o, text)))
            await ctx.add_init_script(_WATCH_BANNER)
            page = await ctx.new_page()

            def on_request(request: Request) -> None:
                if request.url == a_origin + "/healthz":
                    probes.append(time.monotonic())

            page.on("request", on_request)
            page.on("console", lambda m: console.append(f"{page.url} {m.type}: {m.text}"))
            # Each server's page is held at its first login after a move, for a
            # screenshot of the banner as the user sees it arriving.
            shown: dict[str, dict[str, Any]] = {}

            def hold_login(origin: str, name: str) -> Any:
                async def hold(route: Route) -> None:
                    if origin not in shown:
                        shown[origin] = {
                            "visible": await page.is_visible("#banner-switch"),
                            "text": await page.inner_text("#banner-switch"),
                        }
                        await shot(page, name)
                    await route.continue_()

                return hold

            # 1. Opened on the standby: it moves to the active server by itself.
            await page.route(
                lambda url: url == a_origin + "/api/auth/site-login",
                hold_login(a_origin, "site-switching-vi"),
            )
            await page.goto(join_link(standby.base_url, join_code))
            await wait_for(lambda: _online(page, a_origin), timeout=30, interval=0.2)
            assert any(o == b_origin for o, _ in seen), seen  # the banner showed there
            assert shown[a_origin]["visible"] is True, shown
            assert "máy chủ điều hành đang hoạt động" in shown[a_origin]["text"], shown
            assert "#" not in page.url  # the carried secret left the address bar
            assert await page.evaluate("() => window.diemcauSite.follow.hops") == 0
            # What a fragment may carry, read strictly (bad inputs: a broken escape, hops
            # out of range, a negative meeting, stream positions that are not counts,
            # an unknown language); a join link's own code is read as it always was.
            parsed = await page.evaluate(_PARSE_JS)
            assert parsed == [
                _carried(""),
                _carried("a&b:s", hops=20),
                _carried("7:s", hops=1, seqs={"site": 3}, meeting=12, lang="en", why="standby"),
                _carried("26734:x-Y_z"),
            ], parsed

            # In the meeting, with the stream positions saved.
            chair = await _staff(active)
            r = await chair.post(
                "/api/meetings",
                json={"title": "Họp ứng phó bão số 5", "invite": {"sites": [site_code]}},
            )
            assert r.status_code == 201, r.text
            meeting_id = int(r.json()["id"])
            r = await chair.post(f"/api/meetings/{meeting_id}/start")
            assert r.status_code == 200, r.text
            await chair.aclose()
            await page.wait_for_selector("#enter:not([hidden])", timeout=15000)
            await page.click("#enter")
            await page.wait_for_selector("#meeting:not([hidden])")
            seqs_before: dict[str, int] = await page.evaluate("() => window.diemcauSite.seqs")
            assert seqs_before, "no stream position to resume from"

            # English chosen here goes along with the terminal.
            await page.click("#lang")
            await page.route(
                lambda url: url == b_origin + "/api/auth/site-login",
                hold_login(b_origin, "site-switching-en"),
            )

            # 2. The active server killed: the terminal follows the standby.
            seen.clear()
            killed = time.monotonic()
            active.kill()
            await standby.wait_role("active", timeout=60)
            serving = time.monotonic()
            staff_b = await _staff(standby)
            try:
                r = await staff_b.post(
                    "/api/command/directives",
                    json={
                        "title": "Kiểm tra đê điều trong đêm",
                        "body": "Báo cáo trước 6 giờ sáng.",
                        "target": {"sites": [site_code]},
                        "client_id": "follow-test-1",
                    },
                )
                assert r.status_code in (200, 201), r.text
                await wait_for(
                    lambda: _online(page, b_origin), timeout=FOLLOW_BOUND_S + 30, interval=0.1
                )
                online = time.monotonic()
                took = online - serving
                assert took <= FOLLOW_BOUND_S, (
                    f"online on the standby {took:.1f} s after it served "
                    f"({serving - killed:.1f} s after the kill)"
                )
                print(
                    f"standby serving {serving - killed:.1f} s after the kill; the terminal "
                    f"online there {took:.1f} s later"
                )
                # The banner showed while leaving the dead server and on arrival.
                assert any(o == a_origin and "standby server" in text for o, text in seen), seen
                assert shown[b_origin]["visible"] is True, shown
                assert "Switching to the standby server" in shown[b_origin]["text"], shown
                assert await page.is_hidden("#banner-switch")
                assert "#" not in page.url
                # The session resumed (the directive issued while away came through
                # the resume, not as a fresh start) and the meeting was entered again.
                await wait_for(
                    lambda: page.evaluate(
                        "() => window.diemcauSite.received.includes('directive.issued')"
                    ),
                    timeout=10,
                )
                await page.wait_for_selector("#meeting:not([hidden])", timeout=10000)
                seqs_after: dict[str, int] = await page.evaluate("() => window.diemcauSite.seqs")
                assert all(seqs_after.get(k, -1) >= v for k, v in seqs_before.items())
                assert await page.locator("#messages li", has_text="đê điều").count() == 1
                states = (await staff_b.get("/api/web/states")).json()
                assert states["available"] and site_id in states["online"], states
            finally:
                await staff_b.aclose()

            # 3. The standby's host vanishes (its link cut: no reset reaches the page),
            # the other server is dead: the page sees the silence, stays where it is
            # and probes no faster than its backoff; the other server started again
            # takes the lease, and the page follows it there.
            probes.clear()
            cut = time.monotonic()
            cut_link()
            await page.wait_for_selector("#conn[data-state=reconnecting]", timeout=30000)
            lost = time.monotonic()
            # Noticed by the silence rule (20 s without a frame; a tick every 5-8 s),
            # not by a reset: none can come through the cut.
            assert 10 <= lost - cut <= 25, f"the loss was noticed {lost - cut:.1f} s after the cut"
            await wait_for(lambda: _count(probes, 3), timeout=30, interval=0.2)
            assert page.url.startswith(b_origin + "/"), page.url
            # 3 s grace, then 1 s, 1.5 s, 2 s ... apart (plus up to 0.5 s of jitter).
            assert probes[0] - lost >= 2.5, [p - lost for p in probes]
            gaps = [b - a for a, b in zip(probes, probes[1:], strict=False)]
            assert all(g >= 0.9 for g in gaps), gaps
            active.spawn()
            await active.wait_role("active", timeout=60)
            serving = time.monotonic()
            await wait_for(lambda: _online(page, a_origin), timeout=FOLLOW_BOUND_S, interval=0.1)
            print(
                f"host cut: noticed after {lost - cut:.1f} s, {len(probes)} probes of the "
                f"dead server; online on the restarted one "
                f"{time.monotonic() - serving:.1f} s after it served"
            )
            await page.wait_for_selector("#meeting:not([hidden])", timeout=10000)
            await ctx.close()
        finally:
            await browser.close()
