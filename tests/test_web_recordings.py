"""The recordings page in Chromium: timeline, jump to a moment in the player, minutes.

A meeting is run over the HTTP API (two sites join, one gets the floor, a
conclusion, the end); a program recording of it (a WebM made here with ffmpeg,
registered like a processed one) stands in for the media plane, which
test_recording_media.py covers. The chair opens /recordings, clicks the floor
grant in the timeline and the player seeks there; edits and publishes the minutes;
the page is checked in Vietnamese and English, with screenshots.
"""

from __future__ import annotations

import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from diemcau.recording.files import NewFile
from tests.browser import STAFF_PASSWORD, LiveServer, chromium, live_server, shot, staff_login
from tests.site_session import open_session

pytestmark = pytest.mark.browser


async def _login(api: httpx.AsyncClient, body: dict[str, str], path: str) -> dict[str, str]:
    r = await api.post(path, json=body)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


async def _meeting(api: httpx.AsyncClient, srv: LiveServer) -> int:
    codes = srv.join_codes
    # A site joins only while its session is up (issue 12, item 5).
    sessions = [await open_session(srv.runtime, c, codes[c]) for c in codes]
    chair = await _login(api, {"username": "chair", "password": STAFF_PASSWORD}, "/api/auth/login")
    sites = [await _login(api, {"join_code": codes[c]}, "/api/auth/site-login") for c in codes]
    r = await api.post(
        "/api/meetings",
        json={"title": "Giao ban ứng phó bão số 9", "invite": {"sites": list(codes)}},
        headers=chair,
    )
    mid = int(r.json()["id"])
    steps: list[tuple[str, dict[str, Any] | None, dict[str, str]]] = [
        (f"/api/meetings/{mid}/start", None, chair),
        *[(f"/api/site/meetings/{mid}/join", None, s) for s in sites],
        (f"/api/meetings/{mid}/floor/grant", {"site_codes": ["26734"]}, chair),
        (f"/api/meetings/{mid}/conclusions", {"body": "Sơ tán dân trước 17 giờ."}, chair),
        (f"/api/meetings/{mid}/floor/revoke", {}, chair),
        (f"/api/meetings/{mid}/end", None, chair),
    ]
    for path, body, headers in steps:
        r = await api.post(path, json=body, headers=headers)
        assert r.status_code in (200, 201), (path, r.text)
    for session in sessions:
        await session.close()
    return mid


def _webm(path: Path, seconds: int) -> None:
    subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"testsrc=size=320x240:rate=15:duration={seconds}",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:duration={seconds}",
            "-c:v",
            "libvpx",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-b:v",
            "200k",
            "-c:a",
            "libopus",
            "-f",
            "webm",
            str(path),
        ],
        check=True,
    )


async def test_recordings_page_timeline_jumps_and_minutes(tmp_path: Path) -> None:
    async with (
        live_server(tmp_path, join_sites=("26734", "00004")) as srv,
        httpx.AsyncClient(base_url=srv.base_url, timeout=10) as api,
        chromium() as browser,
    ):
        mid = await _meeting(api, srv)
        svc = srv.runtime.recording
        await svc.wait_processed(timeout=30)
        meeting = await svc.history.meeting(mid)
        assert meeting is not None and meeting.started_at and meeting.ended_at
        (svc.config.root / f"m{mid}").mkdir(parents=True, exist_ok=True)
        length = max(4, int((meeting.ended_at - meeting.started_at).total_seconds()) + 2)
        _webm(svc.config.path(f"m{mid}/program.webm"), length)
        await svc.files.add(
            NewFile(
                meeting_id=mid,
                kind="program",
                path=f"m{mid}/program.webm",
                content_type="video/webm",
                duration_s=float(length),
                started_at=meeting.started_at,
                ended_at=meeting.ended_at,
                timing=[[meeting.started_at.isoformat(), 0.0, float(length)]],
            ),
            datetime.now(meeting.started_at.tzinfo),
        )

        ctx = await browser.new_context(viewport={"width": 1366, "height": 900})
        page = await ctx.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        await staff_login(page, srv.base_url, f"/recordings#m={mid}", "chair")
        await page.wait_for_selector("#timeline li[data-kind='floor.grant']", timeout=10_000)
        assert await page.inner_text("#m-title") == "Giao ban ứng phó bão số 9"
        kinds = await page.eval_on_selector_all("#timeline li", "ls => ls.map(l => l.dataset.kind)")
        assert kinds[0] == "meeting.start" and kinds[-1] == "meeting.end"
        assert "attendance.join" not in kinds  # hidden until asked for
        await page.check("#show-presence")
        kinds = await page.eval_on_selector_all("#timeline li", "ls => ls.map(l => l.dataset.kind)")
        assert kinds.count("attendance.join") == 2

        # Jump: the grant's moment in the program.
        jump = page.locator("#timeline li[data-kind='floor.grant'] button[data-offset]")
        offset = float(await jump.get_attribute("data-offset") or "nan")
        assert 0 <= offset < length
        await jump.click()
        await page.wait_for_function(
            f"() => Math.abs(document.querySelector('#player').currentTime - {offset}) < 0.6",
            timeout=10_000,
        )
        await page.wait_for_function(
            "() => document.querySelector('#now-playing').textContent.includes('Chương trình')"
        )

        # Minutes: edit the draft, publish it, the page says so.
        await page.fill("#minutes textarea[name=summary]", "Hai điểm cầu dự họp đầy đủ.")
        await page.click("#minutes button[type=submit]")
        await page.wait_for_function(
            "() => window.diemcauRecordings.minutes"
            " && window.diemcauRecordings.minutes.version === 1"
        )
        page.once("dialog", lambda d: d.accept())
        await page.click("#publish")
        await page.wait_for_function(
            "() => document.querySelector('#min-state').textContent === 'Đã ban hành'"
        )
        assert "Đã đọc: 0/2" in await page.inner_text("#min-receipts")
        await page.wait_for_selector("#storage [data-level]")
        await page.evaluate("window.scrollTo(0, 0)")
        await shot(page, "recordings-vi")
        await page.click("#lang")
        await page.evaluate("window.scrollTo(0, 0)")
        assert await page.inner_text("#min-state") == "Published"
        assert await page.inner_text("h1") == "Recordings and minutes"
        assert "Ended" in await page.inner_text("#m-state")
        assert "Playing: Program" in await page.inner_text("#now-playing")
        assert await page.inner_text("#storage [data-level]") == "OK"
        await shot(page, "recordings-en")
        assert not errors, errors
