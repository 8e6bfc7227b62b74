"""What a site's link can carry: the page's level policy (quality.js, run in Chromium on
made-up windows of stats) and the server's reading of the site's link report."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Page

from diemcau.presence.health import DEFAULT_THRESHOLDS
from diemcau.presence.protocol import LinkReport
from tests.browser import chromium

pytestmark = pytest.mark.browser
in_module_loop = pytest.mark.asyncio(loop_scope="module")

QUALITY_JS = Path(__file__).resolve().parent.parent / "src/diemcau/web/static/quality.js"

# Feed the policy a list of windows ({lossPct, rttMs, frames, videoKbps, simulcast}),
# 2 s apart; return the levels after each window and the history of changes.
RUN = """(windows) => {
  const q = new ProgramQuality();
  let t = 0;
  const levels = [];
  for (const w of windows) {
    t += 2000;
    if (w.simulcast !== undefined) q.setSimulcast(w.simulcast);
    const base = { windowMs: 2000, video: q.level > 0, frames: 50, videoKbps: 300 };
    q.update(Object.assign(base, w), t);
    levels.push(q.level);
  }
  return { levels, history: q.history.map((h) => [h.at / 1000, h.level, h.why]), mode: q.mode };
}"""


# A link that carries the low layer but not the high one, for `n` windows: what the
# page measures depends on the level it chose.
CAPPED = """(n) => {
  const q = new ProgramQuality();
  const levels = [];
  for (let i = 1; i <= n; i++) {
    const over = q.level >= 3;
    q.update({ windowMs: 2000, video: q.level > 0, frames: 50, videoKbps: 300,
               lossPct: over ? 15 : 0, rttMs: over ? 500 : 40 }, 2000 * i);
    levels.push(q.level);
  }
  return { levels, history: q.history.map((h) => [h.at / 1000, h.level, h.why]) };
}"""


def _windows(n: int, **sample: Any) -> list[dict[str, Any]]:
    return [dict(sample) for _ in range(n)]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def page() -> AsyncIterator[Page]:
    """A blank page of Chromium with quality.js loaded (no server needed)."""
    async with chromium() as browser:
        blank = await browser.new_page()
        await blank.add_script_tag(path=str(QUALITY_JS))
        yield blank


async def _run(page: Page, windows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = await page.evaluate(RUN, windows)
    return out


@in_module_loop
async def test_the_level_follows_congestion_down_to_audio_and_climbs_back_with_backoff(
    page: Page,
) -> None:
    clean = _windows(5, lossPct=0, rttMs=40)
    # Congestion (loss with a queue) steps down a level per judged window, to audio.
    out = await _run(page, clean + _windows(8, lossPct=12, rttMs=450))
    assert [h[1] for h in out["history"]] == [2, 1, 0]
    assert {h[2] for h in out["history"]} == {"congested"}
    assert out["mode"] == "audio"
    # Back on a clean link: one level per 10 s of clean windows, after the hold.
    out = await _run(page, clean + _windows(8, lossPct=12, rttMs=450) + _windows(60, **clean[0]))
    assert [h[1] for h in out["history"]] == [2, 1, 0, 1, 2, 3]
    assert out["levels"][-1] == 3

    # A link that carries the low layer only: each climb to the high one fails,
    # and each failure doubles the wait before the next (10, 20, 40 ... 120 s).
    state = await page.evaluate(CAPPED, 400)
    climbs = [h[0] for h in state["history"] if h[2] == "recovered"]
    waits = [b - a for a, b in zip(climbs, climbs[1:], strict=False)]
    assert all(b >= a for a, b in zip(waits, waits[1:], strict=False)), waits
    assert waits[-1] >= 120 and max(waits) <= 130, waits
    assert min(state["levels"]) == 2  # the video never went away: the low layer held
    assert len([t for t in climbs if t > 200]) <= 5  # in the last 600 s: one per 2 min

    # A feed without simulcast has nothing between full video and audio only.
    out = await _run(page, [dict(clean[0], simulcast=False), *clean, *_windows(4, lossPct=30)])
    assert [h[1] for h in out["history"]] == [0]


@in_module_loop
async def test_random_loss_without_a_queue_and_bad_windows_do_not_move_the_level(
    page: Page,
) -> None:
    # 5 % random loss on a 300 ms link with ±60 ms of round-trip jitter: NACK and
    # concealment handle it; a lower layer would lose as much.
    lossy = [
        {"lossPct": [3, 7, 5, 4, 6, 5][i % 6], "rttMs": 240 + (i * 37) % 120} for i in range(150)
    ]
    out = await _run(page, lossy)
    assert out["history"] == [] and out["mode"] == "high"
    # Stuck video (bytes arrive, nothing decodes) steps down even without loss.
    stuck = await _run(page, _windows(3, lossPct=0, rttMs=40) + _windows(2, frames=0, lossPct=0))
    assert [h[2] for h in stuck["history"]] == ["stuck"]
    # Short windows at the lowest frame rate: one window without a frame is not
    # "stuck", two in a row (2 s without a frame while bytes arrive) are.
    short = """(frames) => {
      const q = new ProgramQuality({ windowMs: 1000, settleMs: 2000 });
      let t = 0;
      for (const f of frames) { t += 1000; q.update({ windowMs: 1000, video: true, frames: f,
        videoKbps: 60, lossPct: 0, rttMs: 40 }, t); }
      return q.history.map((h) => h.why);
    }"""
    assert await page.evaluate(short, [5, 5, 5, 0, 4, 1, 3, 0, 5, 0, 6]) == []
    assert await page.evaluate(short, [5, 5, 5, 0, 1, 5]) == ["stuck"]
    # A step down for an overload is not followed by another for the same overload:
    # the loss of the drain (while it settles) and of the old layer is not counted.
    drain = await _run(
        page,
        _windows(5, lossPct=0, rttMs=40)
        + _windows(1, lossPct=30, rttMs=450)  # the overload: one level down
        + _windows(1, lossPct=25, rttMs=400)  # draining, settling: not judged
        + _windows(6, lossPct=2, rttMs=60),  # the lower layer fits
    )
    assert [h[1] for h in drain["history"]] == [2], drain
    # Bad input: windows without figures (no stats yet, NaN) change nothing.
    junk = await _run(page, [{}, {"lossPct": None}, {"lossPct": "x"}] * 5)
    assert junk["history"] == [] and junk["levels"] == [3] * 15


def test_a_site_playing_reduced_video_or_audio_only_is_degraded() -> None:
    clean: dict[str, Any] = {"rtt_ms": 30, "loss_pct": 0, "jitter_ms": 3}
    reason = DEFAULT_THRESHOLDS.degraded_reason
    assert reason(LinkReport(**clean, media="high"), False) is None
    assert reason(LinkReport(**clean, media="low"), False) == "reduced video"
    assert reason(LinkReport(**clean, media="audio"), True) == "audio only"
    assert reason(LinkReport(**clean), False) is None  # no program: the figures alone
    # Bad input: an unknown mode is no reason by itself; an overlong one is refused.
    assert reason(LinkReport(**clean, media="hd"), False) is None
    with pytest.raises(ValueError):
        LinkReport(**clean, media="x" * 17)
