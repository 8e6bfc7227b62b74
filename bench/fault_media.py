"""Fault scenarios of the media plane (`bench/faults.py`): a commune office behind a weak
link, and media nodes killed mid-meeting.

- ``weak_links`` builds the lab (docs/deploy.md §9) with the open office behind
  the link emulator: the chair console (Chromium) publishes simulcast at
  central, the site terminal (Chromium, the product's own level policy at its
  production timings) plays the program from relay1, and an audio probe on the
  same PC counts audio gaps from RTP (`diemcau.sim.audio_probe`; its ~45 kbps of
  audio share the link). One row per link state: 5 % loss + 300 ms RTT + 30 ms
  jitter; a 300 kbps cap; a 110 kbps cap; the link restored (``--duration``: how
  long each state is watched once settled). In the lossy phase a floor speaker
  bot whose encoder adds Opus in-band FEC is listened to as well (by a second
  probe only: it takes the floor after the page joined, through the
  orchestrator, so the page is not told, and leaves it after that phase); the
  site plays the chair alone, as `tests/test_field_weak_links.py` does.
- ``relay_killed`` and ``central_killed`` run central + 2 relays in the
  isolated namespace with bots that come back like the pages do
  (`diemcau.sim.kept`): a chair publisher and decoding viewers at sites on both
  relays; SIGKILL a node; recovery is each affected site's first chair frame
  after the kill. A relay whose host is lost (nothing restarts it) moves its
  sites; a relay or central restarted by its supervisor (as systemd does) is
  rebuilt in place.

Recovery figures are per affected site; "lost" counts nothing of the store
here, so audio and video continuity are in the notes and in the pass condition.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from playwright.async_api import Browser, Page, async_playwright

from diemcau.lab.browser import launch_chromium
from diemcau.lab.deployment import LabDeployment
from diemcau.lab.listen import AudioProbeRun, ProbeReport
from diemcau.lab.meeting import FieldMeeting, field_meeting
from diemcau.lab.network import LANS, Lab
from diemcau.lab.server import STAFF_PASSWORD
from diemcau.lab.trust import lab_tls
from diemcau.media.cluster import LocalCluster
from diemcau.media.node import NodeRegistry
from diemcau.media.orchestrator import MediaOrchestrator, feed_id
from diemcau.media.topology import SiteRef
from diemcau.sim.janus_bots import JanusTarget, PublisherBot
from diemcau.sim.kept import KeptPublisher, KeptViewer
from diemcau.sim.tracks import tune_opus
from fault_kit import FaultOptions, FaultRow, Scenario

RECOVERY_BOUND_S = 10.0
GAPS_PER_MIN_MAX = 1.0  # audio gaps over 100 ms a listener may hear per minute

# --- weak links --------------------------------------------------------------------

SITE, PROBE, SPEAKER = "00004", "00008", "26740"  # Hà Nội x2 (relay1), HCM City (relay2)
# The page's level, and the video frames its program subscriptions decoded so far (from
# WebRTC stats: a <video>'s own count follows the display, not the stream).
STATE_JS = """async () => {
  const S = window.diemcauSite, v = document.querySelector('#program');
  let frames = 0;
  for (const sub of S.media ? S.media.subs.values() : []) {
    if (!sub.pc) continue;
    (await sub.pc.getStats()).forEach((r) => {
      if (r.type === 'inbound-rtp' && r.kind === 'video') frames += r.framesDecoded || 0;
    });
  }
  return { level: S.quality.level, mode: S.quality.mode, height: v ? v.videoHeight : 0, frames };
}"""
# The page's production hold before a climb, at most (ProgramQuality: upAfterMs + maxBackoffMs).
CLIMB_BOUND_S = 130.0


async def _state(page: Page) -> dict[str, Any]:
    out: dict[str, Any] = await page.evaluate(STATE_JS)
    return out


@dataclass
class Watched:
    """What a site's page showed over a stretch of time.

    Attributes:
        slots: per 3 s with the video on (level >= 1 at both ends), its decoded
            frames per second and the level at its end (a 0 is a frozen picture).
        reached: per mark, seconds from the start until it first held.
        state: the page's state at the end.
    """

    slots: list[tuple[float, int]]
    reached: dict[str, float]
    state: dict[str, Any]


async def _watch(
    page: Page,
    seconds: float,
    marks: dict[str, Callable[[dict[str, Any]], bool]] | None = None,
    *,
    longest: float | None = None,
) -> Watched:
    """Watch ``seconds`` (up to ``longest`` while a mark has not held yet)."""
    marks = marks or {}
    started = time.monotonic()
    state = await _state(page)
    reached = {name: 0.0 for name, held in marks.items() if held(state)}
    slots: list[tuple[float, int]] = []
    slot_at, slot_state = started, state
    while True:
        elapsed = time.monotonic() - started
        if elapsed >= seconds and (len(reached) == len(marks) or elapsed >= (longest or seconds)):
            break
        await asyncio.sleep(0.5)
        state = await _state(page)
        now = time.monotonic()
        for name, held in marks.items():
            if name not in reached and held(state):
                reached[name] = now - started
        if now - slot_at >= 3.0:
            if slot_state["level"] >= 1 and state["level"] >= 1:
                fps = (state["frames"] - slot_state["frames"]) / (now - slot_at)
                slots.append((fps, state["level"]))
            slot_at, slot_state = now, state
    return Watched(slots, reached, state)


def _audio(heard: ProbeReport) -> str:
    return (
        f"audio: {heard['gaps_per_minute']:.1f} gaps >100 ms/min (longest "
        f"{heard['longest_ms']:.0f} ms), lost {100 * heard['lost'] / max(1, heard['frames']):.1f} %"
        f", unheard {heard['unheard_pct']:.1f} %, FEC-recovered {heard['recovered']}"
    )


def _video(seen: Watched) -> str:
    """Frame rates per level (median and worst 3 s slot), and where the page ended."""
    by_level: dict[int, list[float]] = {}
    for fps, level in seen.slots:
        by_level.setdefault(level, []).append(fps)
    parts = [
        f"level {level} {statistics.median(v):.0f} fps (worst {min(v):.0f})"
        for level, v in sorted(by_level.items(), reverse=True)
    ]
    s = seen.state
    return (
        f"video: {', '.join(parts) or 'off'}; ends at level {s['level']} "
        f"({s['mode']}, {s['height']} px high)"
    )


def _playing(seen: Watched) -> bool:
    """The picture never froze while the video was on (and it was on)."""
    return bool(seen.slots) and min(fps for fps, _ in seen.slots) > 0


async def _console(browser: Browser, m: FieldMeeting) -> Page:
    page = await browser.new_page()
    await page.goto(m.srv.base_url + "/chair")
    await page.fill("#login input[name=username]", "chair")
    await page.fill("#login input[name=password]", STAFF_PASSWORD)
    await page.click("#login button[type=submit]")
    await page.wait_for_function(
        "() => window.diemcauChair && window.diemcauChair.media && window.diemcauChair.media.pub",
        timeout=30_000,
    )
    return page


async def _speaker(m: FieldMeeting) -> PublisherBot:
    """A floor speaker whose encoder adds in-band FEC (as if it expected 10 % loss)."""
    tune_opus(bitrate=32000, fec_loss_pct=10)
    g = await m.orch.site_media_grant(SPEAKER, m.meeting)
    bot = PublisherBot(
        JanusTarget.publish_of(g),
        g["publish"]["feed_id"],
        "SPEAKER",
        speech_like=True,
        bitrate=150_000,
    )
    await bot.start(timeout=20)
    await m.orch.set_floor(m.meeting, [SPEAKER])
    return bot


def _settled(seen: Watched, mark: str) -> list[float]:
    """The recovery figure of a phase: when ``mark`` first held (none: it never did)."""
    return [seen.reached[mark]] if mark in seen.reached else []


async def _weak_phases(lab: Lab, m: FieldMeeting, site: Page, seconds: float) -> list[FaultRow]:
    rows: list[FaultRow] = []
    grant = await m.orch.site_media_grant(PROBE, m.meeting)
    chair = AudioProbeRun(lab.pc("open"), grant, feed_id("chair", str(m.meeting)), 3600)
    fec = AudioProbeRun(lab.pc("open"), grant, feed_id("site", SPEAKER), 3600)
    await chair.start()
    await fec.start()
    try:
        await chair.segment()
        await fec.segment()
        seen = await _watch(site, seconds)
        heard, heard_fec = await chair.segment(), await fec.report()
        await m.orch.set_floor(m.meeting, [])  # the speaker's part is over
        ok = heard["gaps_per_minute"] <= GAPS_PER_MIN_MAX and _playing(seen)
        rows.append(
            FaultRow(
                "weak: 5% loss, 300 ms RTT, 30 ms jitter",
                "office link shaped at the join; nothing to recover: continuity is the figure",
                1,
                [0.0],
                notes=f"{_audio(heard)}; {_video(seen)}; the floor speaker's "
                f"encoder with in-band FEC: {_audio(heard_fec)}",
                failed="" if ok else "audio gaps or a frozen picture",
            )
        )
        lab.shape("open", rate_kbps=300)
        low = await _watch(site, 0, {"low": lambda s: s["level"] <= 2}, longest=30)
        await _watch(site, 5)  # the new layer's keyframe, the queue draining
        await chair.segment()  # the overload before the switch is not counted
        seen = await _watch(site, seconds)
        heard = await chair.segment()
        ok = heard["gaps_per_minute"] <= GAPS_PER_MIN_MAX and _playing(seen)
        rows.append(
            FaultRow(
                "weak: 300 kbps cap",
                "cap set mid-meeting; recovery = the site takes the low layer (5 s to settle)",
                1,
                _settled(low, "low"),
                bound_s=30.0,
                notes=f"after settling: {_audio(heard)}; {_video(seen)}",
                failed="" if ok else "audio gaps or a frozen picture on the low layer",
            )
        )
        lab.shape("open", rate_kbps=110)
        audio = await _watch(site, 0, {"audio": lambda s: s["mode"] == "audio"}, longest=40)
        await chair.segment()  # stepping down through the overload: not counted
        await _watch(site, seconds)
        heard = await chair.segment()
        presence = m.srv.runtime.presence
        site_id = (await m.srv.runtime.sites.by_codes([SITE]))[SITE].id
        shown = presence.site_state(site_id)
        link = shown.link
        figures = (
            f"loss {link.loss_pct:.1f} %, rtt {link.rtt_ms:.0f} ms, jitter {link.jitter_ms:.0f} ms,"
            f" receiving {link.recv_kbps:.0f} kbps"
            if link is not None
            else "no link report"
        )
        rows.append(
            FaultRow(
                "weak: 110 kbps cap (no video fits)",
                "cap lowered; recovery = the site falls back to audio only",
                1,
                _settled(audio, "audio"),
                bound_s=40.0,
                notes=f"in audio only: {_audio(heard)}; dashboard: {shown.state} "
                f"({shown.reason}; {figures})",
                failed=""
                if heard["gaps_per_minute"] <= GAPS_PER_MIN_MAX and shown.state == "degraded"
                else "audio gaps in audio only, or not shown degraded",
            )
        )
        lab.shape("open")
        back = await _watch(
            site,
            max(seconds, 60),
            {"video": lambda s: s["level"] >= 1, "full": lambda s: s["level"] == 3},
            longest=CLIMB_BOUND_S + 30,
        )
        heard = await chair.report()
        full = back.reached.get("full")
        rows.append(
            FaultRow(
                "weak: link restored",
                "cap lifted; recovery = the video is back (by itself)",
                1,
                _settled(back, "video"),
                bound_s=CLIMB_BOUND_S,
                notes=f"full layer after {'never' if full is None else f'{full:.0f} s'} "
                f"(climbs wait out the backoff of the failed ones); {_audio(heard)}; "
                f"{_video(back)}",
                failed=""
                if full is not None and _playing(back)
                else "the full layer never came back",
            )
        )
    finally:
        await chair.stop()
        await fec.stop()
    return rows


async def weak_links(options: FaultOptions) -> list[FaultRow]:
    """A commune office behind 5 % loss / 300 ms RTT, then 300 and 110 kbps caps (lab)."""
    seconds = options.duration_s or (120.0 if options.soak else 30.0)
    with Lab(control_here=True, lans=(LANS[0],), emulated=("open",)) as lab:
        dep = LabDeployment(
            lab, options.tmp / "lab", {"relay1": ("01",), "relay2": ("79",)}, ca=lab_tls().ca
        )
        dep.prepare()
        await dep.start()
        try:
            async with (
                field_meeting(dep, options.tmp, (SITE, PROBE, SPEAKER), chair_bot=False) as m,
                async_playwright() as pw,
            ):
                pins = dep.spki_pins()
                chair_browser = await launch_chromium(pw, pins)
                site_browser = await launch_chromium(
                    pw, pins, executable=str(dep.chromium_in("open"))
                )
                speaker: PublisherBot | None = None
                try:
                    await _console(chair_browser, m)
                    lab.shape("open", loss_pct=5, delay_ms=150, jitter_ms=30)
                    site = await site_browser.new_page()
                    await site.goto(m.srv.join_link(SITE))
                    await site.wait_for_selector("#enter:not([hidden])", timeout=30_000)
                    await site.click("#enter")
                    await site.wait_for_function(
                        "() => document.querySelector('#program').videoWidth > 0", timeout=30_000
                    )
                    speaker = await _speaker(m)
                    return await _weak_phases(lab, m, site, seconds)
                finally:
                    if speaker is not None:
                        await speaker.stop()
                    await site_browser.close()
                    await chair_browser.close()
        finally:
            await dep.stop()


# --- media nodes killed ----------------------------------------------------------------

RELAYS = [("r1", ("01",), 50), ("r2", ("02",), 50)]


def _sites(per_relay: int) -> list[SiteRef]:
    """``per_relay`` sites of province 01 (relay1: A0, A1 ...) and 02 (relay2: B0 ...)."""
    return [
        SiteRef(f"{p}{i}", prov) for p, prov in (("A", "01"), ("B", "02")) for i in range(per_relay)
    ]


async def _node_kill(
    options: FaultOptions, *, victim: str, restart: bool, name: str, action: str
) -> FaultRow:
    """Kill ``victim`` mid-meeting (``kills`` times in a soak), time each affected site's
    first chair frame after the kill."""
    per_relay = options.sites or 3
    sites = _sites(per_relay)
    cluster = LocalCluster(relays=RELAYS, supervise=restart)
    await cluster.start()
    registry = NodeRegistry()  # production timings: checks every 1 s, down after 3 s
    orch = MediaOrchestrator(cluster.nodes(), sites, sync_interval=0.5, registry=registry)
    kept: list[KeptPublisher | KeptViewer] = []
    recovery: list[float] = []
    republished: list[float] = []
    try:
        await orch.start()
        registry.start()
        first = await orch.start_program("bench")
        chair_feed = first["publish"]["feed_id"]

        async def chair_target() -> JanusTarget:
            g = orch.chair_media_grant("bench")
            return JanusTarget.publish_of(g)

        def site_target(code: str) -> Callable[[], Awaitable[JanusTarget]]:
            async def target() -> JanusTarget:
                g = await orch.site_media_grant(code, "bench")
                return JanusTarget.program_of(g)

            return target

        chair = KeptPublisher(chair_target, chair_feed, "CHAIR")
        kept.append(chair)
        chair.start()
        viewers = {s.code: KeptViewer(site_target(s.code), chair_feed) for s in sites}
        for v in viewers.values():
            kept.append(v)
            v.start()
        for v in viewers.values():
            await v.first_frame_after(0, "CHAIR", timeout=30)
        kills = 5 if options.soak else 1
        for _ in range(kills):
            affected = [
                code
                for code in viewers
                if victim == "central" or orch.plan.assignment.get(code) == victim
            ]
            published = len(chair.published_at)
            killed = time.monotonic()
            cluster.processes[victim].kill()
            for code in affected:
                try:
                    at = await viewers[code].first_frame_after(killed, "CHAIR", timeout=30)
                    recovery.append(at - killed)
                except TimeoutError:
                    pass
            if len(chair.published_at) > published:
                republished.append(chair.published_at[-1] - killed)
            if not restart:
                break  # the host is gone: one kill
            await asyncio.sleep(3)
        affected_total = len(affected) * (kills if restart else 1)
        moved = sum(
            1
            for s in sites
            if orch.plan.assignment.get(s.code) != ("r1" if s.province == "01" else "r2")
        )
        told = (
            f"chair published again after {statistics.median(republished):.1f} s"
            if republished
            else "the chair never noticed"
        )
        notes = f"{kills} kill(s), {per_relay} sites per relay; {told}; {moved} site(s) moved"
        return FaultRow(
            name,
            action,
            affected_total,
            recovery,
            bound_s=RECOVERY_BOUND_S,
            notes=notes,
        )
    finally:
        for k in reversed(kept):
            await k.stop()
        await orch.close()
        await registry.stop()
        await cluster.stop()


async def relay_killed(options: FaultOptions) -> list[FaultRow]:
    """A relay SIGKILLed mid-meeting: its host lost (sites move), or restarted in place."""
    lost = await _node_kill(
        options,
        victim="r1",
        restart=False,
        name="relay SIGKILL, host lost",
        action="relay1 killed, never restarted: its sites move to relay2",
    )
    restarted = await _node_kill(
        options,
        victim="r1",
        restart=True,
        name="relay SIGKILL, restarted",
        action="relay1 killed, its supervisor restarts it 1 s later",
    )
    return [lost, restarted]


async def central_killed(options: FaultOptions) -> list[FaultRow]:
    """Central Janus SIGKILLed mid-meeting, restarted by its supervisor: the program back."""
    return [
        await _node_kill(
            options,
            victim="central",
            restart=True,
            name="central SIGKILL, restarted",
            action="central killed; restarted 1 s later, rooms and cascade rebuilt",
        )
    ]


SCENARIOS: list[Scenario] = [relay_killed, central_killed, weak_links]
