"""A commune office behind a weak link, in the lab, with Chromium on both ends.

The open office's PC reaches its router through the lab's link emulator
(`Lab(emulated=...)`, delay, jitter and loss) and a ``tbf`` cap. The chair
console (Chromium on the control host) publishes simulcast at central; the site
terminal (Chromium on the office PC) plays the program from relay1; an audio
probe on the same PC listens to the chair's audio from RTP (`AudioProbeRun`).
Pass conditions (docs/reliability.md, "Media plane"): behind 5 % loss, 300 ms
RTT and 30 ms jitter the audio has no gap over 100 ms and the video keeps
playing; behind a 300 kbps cap the site takes the low layer and keeps both;
behind 110 kbps it falls back to audio only, is shown degraded with its figures
on the dashboard, and takes the video back when the link recovers. The page's
timings are shortened (`window.DIEMCAU_QUALITY`) to keep the run short.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Page, async_playwright

from diemcau.lab.browser import launch_chromium
from diemcau.lab.deployment import LabDeployment
from diemcau.lab.listen import AudioProbeRun
from diemcau.lab.meeting import FieldMeeting, field_meeting
from diemcau.lab.netns import LabError
from diemcau.lab.network import LANS, Lab
from diemcau.media.orchestrator import feed_id
from tests.browser import lab_tls, shot, staff_login, wait_for

pytestmark = [
    pytest.mark.media,
    pytest.mark.browser,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"),
]

SITE, PROBE = "00004", "00008"  # both in Hà Nội: relay1
FAST = (
    "window.DIEMCAU_QUALITY = {windowMs: 1000, upAfterMs: 4000, backoffMs: 4000,"
    " maxBackoffMs: 16000, failedClimbMs: 8000, settleMs: 2000};"
)
STATE = """() => {
  const S = window.diemcauSite, v = document.querySelector('#program');
  return { level: S.quality.level, mode: S.quality.mode, height: v ? v.videoHeight : 0,
           frames: v && v.srcObject ? v.getVideoPlaybackQuality().totalVideoFrames : 0 };
}"""
CAMERA_ON = """() => {
  const m = window.diemcauSite.media, pc = m && m.pub && m.pub.pc;
  if (!pc) return null;
  const s = pc.getSenders().find((x) => x.track && x.track.kind === 'video');
  return s.getParameters().encodings.some((e) => e.active !== false);
}"""


@dataclass
class Office:
    lab: Lab
    dep: LabDeployment
    m: FieldMeeting
    pw: Any


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def office(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Office]:
    tmp = tmp_path_factory.mktemp("weak")
    with Lab(control_here=True, lans=(LANS[0],), emulated=("open",)) as lab:
        dep = LabDeployment(
            lab, tmp / "lab", {"relay1": ("01",), "relay2": ("79",)}, ca=lab_tls().ca
        )
        dep.prepare()
        await dep.start()
        try:
            async with (
                field_meeting(dep, tmp, (SITE, PROBE), chair_bot=False) as m,
                async_playwright() as pw,
            ):
                yield Office(lab, dep, m, pw)
        finally:
            await dep.stop()


# The round trip from the office PC to the control host: a TCP connect to a closed
# port is refused after exactly one round trip (a lost SYN shows as a 1 s retry).
_RTT = """
import socket, sys, time
out = []
for _ in range(int(sys.argv[1])):
    t = time.monotonic()
    try:
        socket.create_connection(("198.51.100.10", 9), timeout=3).close()
    except ConnectionRefusedError:
        out.append((time.monotonic() - t) * 1000)
    except OSError:
        out.append(-1)
print(" ".join(f"{x:.1f}" for x in out))
"""


_BLAST = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(int(sys.argv[1])):
    s.sendto(b"x" * 100, ("198.51.100.10", 9))
"""


def _lossy(lab: Lab) -> dict[str, dict[str, int]]:
    """5 % loss, 150 ms each way (300 ms RTT), ±30 ms of jitter each way."""
    return lab.shape("open", loss_pct=5, delay_ms=150, jitter_ms=30)


def _rtts(lab: Lab, n: int) -> list[float]:
    return [float(x) for x in lab.pc("open").run(sys.executable, "-c", _RTT, str(n)).split()]


async def test_the_emulated_link_delays_drops_and_caps(office: Office) -> None:
    lab = office.lab
    assert statistics.median([r for r in _rtts(lab, 5) if r > 0]) < 20
    before = _lossy(lab)
    rtts = _rtts(lab, 20)
    clean = [r for r in rtts if 0 < r < 900]
    assert 260 <= statistics.median(clean) <= 340, rtts  # 2 x 150 ms, ±30 each way
    assert max(clean) - min(clean) > 20  # it varies
    # 1000 datagrams up the link: about 5 % of those the emulator reads are dropped.
    lab.pc("open").run(sys.executable, "-c", _BLAST, "1000")
    await asyncio.sleep(0.5)  # let them through the 150 ms before the counters are read
    after = lab.shape("open", rate_kbps=300)
    up = after["up"]["dropped"] - before["up"]["dropped"]
    sent = up + after["up"]["forwarded"] - before["up"]["forwarded"]
    assert sent >= 400 and 0.02 <= up / sent <= 0.09, (up, sent)  # (a burst may overflow)
    assert "rate 300Kbit" in lab.hosts["open-gw"].run("tc", "qdisc", "show", "dev", "lan")
    assert "rate 300Kbit" in lab.pc("open").run("tc", "qdisc", "show", "dev", "eth0")
    # Bad input: a LAN without an emulator, impossible figures: refused, nothing changes.
    with pytest.raises(LabError, match="not an emulated LAN"):
        lab.shape("nat", loss_pct=5)
    for bad in ({"loss_pct": 101}, {"delay_ms": 10, "jitter_ms": 20}, {"rate_kbps": 1}):
        with pytest.raises(ValueError):
            lab.shape("open", **bad)  # type: ignore[arg-type]
    assert "rate 300Kbit" in lab.hosts["open-gw"].run("tc", "qdisc", "show", "dev", "lan")
    lab.shape("open")
    assert "rate 10Gbit" in lab.hosts["open-gw"].run("tc", "qdisc", "show", "dev", "lan")
    assert statistics.median([r for r in _rtts(lab, 5) if r > 0]) < 20


async def _state(page: Page) -> dict[str, Any]:
    out: dict[str, Any] = await page.evaluate(STATE)
    return out


async def _keeps_playing(page: Page, seconds: float, slot: float = 3.0) -> list[int]:
    """Decoded frames per `slot` over `seconds`: a 0 is a picture that froze."""
    counts: list[int] = []
    last = (await _state(page))["frames"]
    for _ in range(int(seconds / slot)):
        await asyncio.sleep(slot)
        now = (await _state(page))["frames"]
        counts.append(now - last)
        last = now
    return counts


async def test_weak_site_keeps_its_audio_degrades_video_falls_back_and_recovers(
    office: Office,
) -> None:
    o = office
    lab, m = o.lab, o.m
    pins = o.dep.spki_pins()
    chair_browser = await launch_chromium(o.pw, pins)
    site_browser = await launch_chromium(o.pw, pins, executable=str(o.dep.chromium_in("open")))
    probe: AudioProbeRun | None = None
    try:
        chair = await chair_browser.new_page()
        await staff_login(chair, m.srv.base_url, "/chair", "chair")
        await chair.wait_for_function(
            "() => window.diemcauChair.media && window.diemcauChair.media.pub", timeout=30_000
        )
        # The office joins over a lossy, slow, jittery link.
        _lossy(lab)
        site = await site_browser.new_page(viewport={"width": 1280, "height": 760})
        await site.add_init_script(FAST)
        await site.goto(m.srv.join_link(SITE))
        await site.wait_for_selector("#enter:not([hidden])", timeout=30_000)
        await site.click("#enter")
        await wait_for(lambda: _state(site), timeout=30)
        # ICE and DTLS over 5 % loss and 300 ms RTT: retransmissions take their time.
        await site.wait_for_function(
            "() => document.querySelector('#program').videoWidth > 0", timeout=90_000
        )
        chair_feed = feed_id("chair", str(m.meeting))
        grant = await m.orch.site_media_grant(PROBE, m.meeting)
        probe = AudioProbeRun(lab.pc("open"), grant, chair_feed, 600)
        await probe.start()

        # 5 % loss, 300 ms RTT, 30 ms jitter: no audio gap over 100 ms, video plays on.
        frames = await _keeps_playing(site, 9)
        heard = await probe.segment()
        assert heard["gaps_over_100ms"] == 0, heard
        assert heard["frames"] > 400 and heard["lost"] > 0, heard  # the loss was there
        assert min(frames) > 0, frames
        assert (await _state(site))["level"] >= 1

        # 300 kbps: the low layer (a quarter of the picture), audio and video go on.
        lab.shape("open", rate_kbps=300)
        await site.wait_for_function("() => window.diemcauSite.quality.level <= 2", timeout=15_000)
        await site.wait_for_function(
            "() => document.querySelector('#program').videoHeight === 180", timeout=10_000
        )
        await probe.segment()  # the overload before the switch is not counted
        frames = await _keeps_playing(site, 9)
        heard = await probe.segment()
        assert min(frames) > 0, frames
        assert heard["gaps_over_100ms"] <= 1, heard
        await shot(site, "weak-site-low-layer")

        # 110 kbps: no video fits any more; audio only, the camera stops too.
        lab.shape("open", rate_kbps=110)
        await site.wait_for_function(
            "() => window.diemcauSite.quality.mode === 'audio'", timeout=20_000
        )
        assert await site.is_visible("#quality[data-mode=audio]")
        await wait_for(lambda: _camera(site, False), timeout=5)
        await probe.segment()  # stepping down through the overload: not counted
        await shot(site, "weak-site-audio-only")
        site_id = (await m.srv.runtime.sites.by_codes([SITE]))[SITE].id
        state = await wait_for(lambda: _degraded(m, site_id, "audio only"), timeout=10)
        assert state.link is not None and state.link.media == "audio"
        assert state.link.recv_kbps < 110
        # The dashboard lists the site among the weak links, with its figures.
        dash = await chair_browser.new_page(viewport={"width": 1366, "height": 800})
        await staff_login(dash, m.srv.base_url, "/dashboard", "chair")
        row = dash.locator(f"#weak li[data-code='{SITE}']")
        await row.wait_for(timeout=15_000)
        text = await row.inner_text()
        assert "chỉ âm thanh" in text and "mất gói" in text and "kbps" in text, text
        await shot(dash, "weak-dashboard")
        heard = await probe.segment()  # audio only on 110 kbps: continuous
        assert heard["gaps_over_100ms"] == 0, heard

        # The link recovers: the video (and the camera) come back by themselves.
        lab.shape("open")
        await site.wait_for_function("() => window.diemcauSite.quality.level >= 1", timeout=30_000)
        await wait_for(lambda: _camera(site, True), timeout=5)
        assert min(await _keeps_playing(site, 6)) > 0
        await wait_for(lambda: _reported(m, site_id, ("low", "high")), timeout=10)
        heard = await probe.report()
        probe = None
        assert heard["gaps_over_100ms"] == 0, heard
    finally:
        if probe is not None:
            await probe.stop()
        lab.shape("open")
        await site_browser.close()
        await chair_browser.close()


async def _camera(page: Page, on: bool) -> bool:
    return bool(await page.evaluate(CAMERA_ON) is on)


async def _degraded(m: FieldMeeting, site_id: int, reason: str) -> Any:
    state = m.srv.runtime.presence.site_state(site_id)
    return state if state.state == "degraded" and state.reason == reason else None


async def _reported(m: FieldMeeting, site_id: int, media: tuple[str, ...]) -> bool:
    link = m.srv.runtime.presence.site_state(site_id).link
    return link is not None and link.media in media
