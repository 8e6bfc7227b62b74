"""Online inspection in real Chromium on real Janus: a standby site terminal, an inspector.

A site terminal is open between meetings (control session up, devices granted): it
publishes nothing. The inspector (the chair, on the inspection page) inspects it: the
terminal starts publishing, the inspector's page decodes its frames, the terminal shows
who looks and since when; a call carries audio both ways (decoded audio energy at each
end); ending the inspection stops the terminal's publishing (checked in Janus). A site
with no terminal open, and a terminal that keeps its control session but never
publishes, are recorded *not answered*; a province officer is refused another
province's site; the audit log holds every step. A round is stepped through with the
keyboard (verdicts, a note, a snapshot) and its printable report holds them; the chair
console's video wall makes a standby site publish while the page shows it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Page

from diemcau.audit import AuditQuery, query_audit
from diemcau.media.orchestrator import room_id
from tests.browser import (
    HeartbeatSite,
    chromium,
    live_server,
    media_cluster,
    shot,
    staff_login,
    video_playing,
    wait_for,
)

pytestmark = [pytest.mark.media, pytest.mark.browser]

# Decoded audio energy of a peer connection's inbound audio (0 without one).
_AUDIO = """async (path) => {
  const pc = path.split(".").reduce((o, k) => (o ? o[k] : null), window);
  if (!pc) return 0;
  let energy = 0;
  (await pc.getStats()).forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "audio") {
      energy = Math.max(energy, r.totalAudioEnergy || 0);
    }
  });
  return energy;
}"""


async def _no_banner(site: Page) -> None:
    """The site's inspection banner goes within 10 s (else: who it still names)."""

    async def gone() -> bool:
        return await site.is_hidden("#banner-inspect")

    try:
        await wait_for(gone, timeout=10)
    except AssertionError as exc:
        text = await site.inner_text("#banner-inspect")
        raise AssertionError(f"the banner still shows: {text!r}") from exc


async def _energy(page: Page, path: str) -> float:
    return float(await page.evaluate(_AUDIO, path))


async def _publishers(rig: object, node: str, code: str) -> list[dict[str, object]]:
    people = await rig.orch.control(node).participants(room_id("uplink", code))  # type: ignore[attr-defined]
    return [p for p in people if p.get("publisher")]


async def test_inspect_a_standby_site_call_it_end_and_the_findings(tmp_path: Path) -> None:
    env = {"DIEMCAU_INSPECTION_ANSWER_S": "5"}
    async with (
        live_server(tmp_path, join_sites=("26734", "00004"), env=env) as srv,
        media_cluster(srv) as rig,
        chromium() as browser,
    ):
        # The commune office opens its terminal: on standby, publishing nothing.
        site = await (await browser.new_context(viewport={"width": 1280, "height": 800})).new_page()
        await site.goto(srv.join_link("26734"))
        await site.wait_for_selector("#conn[data-state=online]", timeout=15_000)
        await site.wait_for_function(
            "() => window.diemcauSite.standby.session !== null", timeout=15_000
        )
        assert await _publishers(rig, "r2", "26734") == []
        assert await site.is_hidden("#banner-inspect")

        # The chair inspects it from the inspection page, found without diacritics.
        insp = await (await browser.new_context(viewport={"width": 1366, "height": 768})).new_page()
        await staff_login(insp, srv.base_url, "/inspection", "chair")
        await insp.fill("#find-q", "sai gon")
        await insp.click("#hits li button")
        await video_playing(insp, "#insp-video")
        first_ms = await insp.evaluate("window.diemcauInspection.insp.firstFrameMs")
        assert first_ms is not None and first_ms < 5000, first_ms
        print(f"standby site: inspect -> first frame {first_ms} ms")
        assert len(await _publishers(rig, "r2", "26734")) == 1
        # The site says who looks and since when.
        banner = site.locator("#banner-inspect")
        await banner.wait_for(timeout=5_000)
        text = await banner.inner_text()
        assert "ĐANG ĐƯỢC KIỂM TRA TRỰC TUYẾN" in text and "chair (chủ trì)" in text, text
        await insp.wait_for_function(
            "() => window.diemcauInspection.insp.state === 'live'", timeout=5_000
        )
        await shot(site, "inspection-site-banner")
        await shot(insp, "inspection-console-live")

        # A call: the inspector's camera and microphone reach the site, both ways.
        await insp.keyboard.press("c")
        await site.wait_for_selector("#call-box:not([hidden])", timeout=10_000)
        await video_playing(site, "#call-video")
        await wait_for(lambda: _energy(site, "diemcauSite.standby.call.pc"), timeout=10)
        await wait_for(lambda: _energy(insp, "diemcauInspection.insp.pc"), timeout=10)
        assert "CUỘC GỌI KIỂM TRA" in await banner.inner_text()
        await shot(site, "inspection-site-call")
        await shot(insp, "inspection-console-call")
        await insp.keyboard.press("c")  # hang up
        await site.wait_for_selector("#call-box", state="hidden", timeout=10_000)

        # The end: the site stops publishing and its banner goes.
        await insp.keyboard.press("e")
        await site.wait_for_selector("#banner-inspect", state="hidden", timeout=10_000)

        async def unpublished() -> bool:
            return await _publishers(rig, "r2", "26734") == []

        await wait_for(unpublished, timeout=10)
        assert await site.evaluate("window.diemcauSite.standby.pub") is None

        # No terminal open at Ngọc Hà: not answered at once.
        await insp.goto(srv.base_url + "/inspection#site=00008")
        await insp.wait_for_selector("#insp-state[data-state=not_answered]", timeout=10_000)
        assert "KHÔNG TRẢ LỜI" in await insp.inner_text("#insp-state")
        # Ba Đình keeps its control session but never publishes: not answered after 5 s.
        mute = HeartbeatSite(srv.runtime.presence.url, srv.join_codes["00004"])
        await mute.start()
        try:
            await insp.goto(srv.base_url + "/inspection#site=00004")
            await insp.wait_for_selector("#insp-state[data-state=waiting]", timeout=10_000)
            await insp.wait_for_selector("#insp-state[data-state=not_answered]", timeout=15_000)
            assert "không phát hình" in await insp.inner_text("#insp-state")
            await shot(insp, "inspection-console-not-answered")
        finally:
            await mute.close()

        # A province officer of Hà Nội, reading in English, is refused Hồ Chí Minh City's site
        # as if it did not exist (nothing tells that it does).
        officer = await (
            await browser.new_context(viewport={"width": 1366, "height": 768})
        ).new_page()
        await staff_login(officer, srv.base_url, "/inspection", "hanoi")
        await officer.click("#lang")
        assert await officer.inner_text("#b-inspect") == "Inspect (I)"
        await officer.goto(srv.base_url + "/inspection#site=26734")
        await officer.wait_for_function(
            "() => document.querySelector('#insp-state').textContent"
            ".includes(\"no site '26734' in your reach\")",
            timeout=10_000,
        )
        await shot(officer, "inspection-officer-refused-en")

        # Every step is in the audit log.
        _, rows = await query_audit(srv.runtime.db, AuditQuery(limit=1000))
        actions = [(r.action, r.target) for r in rows if r.action.startswith("inspection.")]
        assert ("inspection.start", "26734") in actions
        assert ("inspection.call.start", "26734") in actions
        assert ("inspection.call.end", "26734") in actions
        assert ("inspection.end", "26734") in actions
        assert ("inspection.not_answered", "00008") in actions
        assert ("inspection.not_answered", "00004") in actions
        assert not [a for a in actions if a[1] == "26734" and a[0] == "inspection.start"][1:]
        ends = {r.target: r.details for r in rows if r.action == "inspection.end"}
        assert ends["26734"] is not None and ends["26734"]["mode"] == "two_way"
        assert ends["26734"]["answered"] is True
        missed = {r.target: r.details for r in rows if r.action == "inspection.not_answered"}
        assert missed["00008"] is not None and missed["00008"]["reason"] == "no_terminal"
        assert missed["00004"] is not None and missed["00004"]["reason"] == "no_publish"


async def test_a_round_by_keyboard_its_report_and_the_standby_wall(tmp_path: Path) -> None:
    async with (
        live_server(tmp_path, join_sites=("26734",)) as srv,
        media_cluster(srv),
        chromium() as browser,
    ):
        site = await (await browser.new_context()).new_page()
        await site.goto(srv.join_link("26734"))
        await site.wait_for_function(
            "() => window.diemcauSite.standby.session !== null", timeout=15_000
        )

        page = await (await browser.new_context(viewport={"width": 1366, "height": 768})).new_page()
        await staff_login(page, srv.base_url, "/inspection", "chair")
        await page.click("#new-round summary")
        await page.fill("#r-title", "Kiểm tra trụ sở tháng 11")
        await page.check("input[name=how][value=list]")
        await page.fill("#r-codes", "26734, 00008")
        await page.click("#round-form button[type=submit]")
        await page.wait_for_selector("#items tr[data-code='00008']")
        # Hà Nội's commune comes first (by province, then name): no terminal open there.
        assert await page.inner_text("#position") == "Điểm cầu 1/2"
        assert await page.inner_text("#site-h") == "Phường Ngọc Hà"
        await page.keyboard.press("i")
        await page.wait_for_selector("#insp-state[data-state=not_answered]", timeout=10_000)
        # "No answer" is the verdict until someone writes another.
        await page.wait_for_selector("#items tr[data-code='00008'] .vtag.no_answer", timeout=5_000)
        await page.keyboard.press("n")  # the next site, inspected on arrival
        await video_playing(page, "#insp-video")
        await page.keyboard.press("s")
        await page.wait_for_selector("#snap-fig:not([hidden])", timeout=10_000)
        await page.keyboard.press("1")
        await page.wait_for_selector("#items tr[data-code='26734'] .vtag.pass", timeout=5_000)
        await page.fill("#note", "Có cán bộ trực, thiết bị đầy đủ")
        await page.keyboard.press("Control+Enter")
        await page.wait_for_selector(
            "#items tr[data-code='26734'] td.note:has-text('Có cán bộ trực')", timeout=5_000
        )
        await shot(page, "inspection-round")
        # The printable report holds the verdicts, the note and the snapshot.
        async with page.context.expect_page() as popup:
            await page.click("#b-report")
        report = await popup.value
        await report.wait_for_selector("h1")
        text = await report.inner_text("body")
        assert "BÁO CÁO KIỂM TRA TRỰC TUYẾN" in text and "Có cán bộ trực" in text
        assert "Đạt / Pass" in text and "Không trả lời / No answer" in text
        # Answered, though the team is still looking at it.
        assert "Có / Yes" in text and "Không / No" in text
        assert await report.locator("img").count() == 1
        await shot(report, "inspection-report")
        await report.close()
        await page.keyboard.press("e")
        await _no_banner(site)

        # The chair console's wall shows standby sites: the terminal publishes while shown.
        chair = await (
            await browser.new_context(viewport={"width": 1366, "height": 768})
        ).new_page()
        await staff_login(chair, srv.base_url, "/chair", "chair")
        await chair.select_option("#wall-prov", label="Thành phố Hồ Chí Minh")
        # No site of the province is in a meeting: filtered by "in a meeting", none shows.
        await chair.select_option("#wall-state", "meeting")
        await chair.click("#wall-toggle")
        await chair.wait_for_function(
            "() => document.querySelector('#wall-page').textContent.endsWith('· 0 điểm cầu')",
            timeout=10_000,
        )
        assert await chair.locator("#wall .tile").count() == 0
        # Filtered by "standby", the open terminal shows, tagged as standby, and publishes.
        await chair.select_option("#wall-state", "standby")
        await video_playing(chair, "#wall .tile[data-code='26734'] video", timeout=20)
        tag = chair.locator("#wall .tile[data-code='26734'] .where")
        assert await tag.get_attribute("data-where") == "standby"
        assert "chờ" in await tag.inner_text()
        banner = await site.inner_text("#banner-inspect")
        assert "tường hình" in banner, banner
        await shot(chair, "inspection-wall")
        # Switched off while a lease request is on its way (a new page of sites that do
        # not publish, retried): the lease it brings back is given back, so the terminal's
        # banner goes at once rather than when the lease would expire (30 s).
        await chair.select_option("#wall-state", "all")
        await chair.click("#wall-toggle")
        await chair.evaluate("window.diemcauChair.wall.leaseChain")  # every request back

        async def no_wall_page() -> bool:
            return srv.runtime.inspection.wall.held() == 0

        await wait_for(no_wall_page, timeout=10)
        await _no_banner(site)
        await wait_for(lambda: site.evaluate("window.diemcauSite.standby.pub === null"), timeout=10)
        # The figures by province reach the dashboard.
        await chair.goto(srv.base_url + "/dashboard")
        await chair.wait_for_selector("#insp-figures table", timeout=10_000)
        figures = await chair.inner_text("#insp-figures")
        assert "Hồ Chí Minh" in figures and "Cả nước" in figures
        await shot(chair, "inspection-dashboard")
        # Every column fits the narrow side column: the last one (the fail verdicts) too.
        fits = await chair.evaluate(
            """() => {
              const box = document.querySelector('#insp-figures').getBoundingClientRect();
              const ths = document.querySelectorAll('#insp-figures thead th');
              return ths[ths.length - 1].getBoundingClientRect().right <= box.right + 1;
            }"""
        )
        assert fits, "the inspection figures' last column is cut off"
        assert "Chưa đạt" in figures
