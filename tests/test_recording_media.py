"""A recorded meeting end to end: real Janus (central + two relays), aiortc bots, the HTTP API.

The chair's bot publishes at central, two sites' bots on their relays; the chair
gives the floor to one site, then to the other, then takes it back, and ends the
meeting. Checked: the program and both clips are playable WebM (streams and
durations with ffprobe), each clip shows its own speaker's frame stamps (decoded
with PyAV) from the time it held the floor, the timeline matches the meeting's
events, the minutes PDF carries the attendance figures, the published minutes
reach a site and the site's acknowledgement counts as a read receipt, who may
fetch which file, and a tampered file is refused and reported. Also: a publisher
cannot make Janus record (``lock_record`` and the unwritable ``rec_dir``).
"""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import av
import pytest
from pypdf import PdfReader
from sqlalchemy import select

from diemcau.audit.models import AuditEntry
from diemcau.media.cluster import LocalCluster
from diemcau.media.control import NodeControl
from diemcau.media.grants import ChairGrant, SiteGrant
from diemcau.media.janus import Jsep
from diemcau.media.orchestrator import MediaOrchestrator
from diemcau.sim.janus_bots import JanusTarget, PublisherBot
from diemcau.sim.stamps import StampVerdict, inspect_stamp, label_code
from tests.api_support import ApiEnv, api_env, media_plane_on_two_relays
from tests.route_table import TREE

pytestmark = pytest.mark.media

STAFF = {
    "chair": ("chair", None),
    "admin": ("admin", None),
    "ops": ("operator", None),
    "hcm": ("province_officer", "79"),
}


async def wait_for(cond: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.1)


def probe(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,codec_type:format=duration",
            "-of",
            "json",
            str(path),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    data: dict[str, Any] = json.loads(out)
    return data


def stamps(data: bytes) -> tuple[dict[int, int], list[int], int]:
    """(label code → frames, send times in ms, corrupt frames) of a WebM's decoded video."""
    labels: dict[int, int] = {}
    times: list[int] = []
    corrupt = 0
    with av.open(io.BytesIO(data), mode="r") as container:
        for frame in container.decode(video=0):
            reading = inspect_stamp(frame.to_ndarray(format="gray"))
            if reading.verdict is StampVerdict.CORRUPT:
                corrupt += 1
            if reading.stamp is not None:
                labels[reading.stamp.label] = labels.get(reading.stamp.label, 0) + 1
                times.append(reading.stamp.sent_ms)
    return labels, times, corrupt


def ms32(at: datetime) -> int:
    return int(at.timestamp() * 1000) & 0xFFFFFFFF


@pytest.fixture
async def env(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[ApiEnv]:
    monkeypatch.setenv("DIEMCAU_RECORDINGS_DIR", str(tmp_path / "recordings"))
    async with api_env(sqlite_url, TREE, ["26734", "00004"], staff=STAFF) as e:
        yield e


@pytest.fixture
async def orch(env: ApiEnv) -> AsyncIterator[MediaOrchestrator]:
    async with media_plane_on_two_relays(env) as o:
        yield o


def target(grant: SiteGrant | ChairGrant) -> JanusTarget:
    return JanusTarget.publish_of(grant)


async def test_recorded_meeting_program_clips_timeline_minutes_access(
    env: ApiEnv, orch: MediaOrchestrator
) -> None:
    c = env.client
    chair, admin, ops, hcm = [await env.login(u) for u in ("chair", "admin", "ops", "hcm")]
    ben_nghe, ba_dinh = await env.site("26734"), await env.site("00004")
    svc = env.runtime.recording

    r = await c.post(
        "/api/meetings",
        json={
            "title": "Giao ban phòng chống bão",
            "agenda": "1. Tình hình\n2. Chỉ đạo",
            "invite": {"sites": ["26734", "00004"]},
        },
        headers=chair,
    )
    mid = r.json()["id"]
    # Bad policy input is refused and changes nothing; an operator may not change it.
    r = await c.put(
        f"/api/meetings/{mid}/recording/policy", json={"retention_days": 0}, headers=chair
    )
    assert r.status_code == 422
    r = await c.put(f"/api/meetings/{mid}/recording/policy", json={"record": True}, headers=chair)
    assert r.status_code == 422
    r = await c.put(
        f"/api/meetings/{mid}/recording/policy", json={"retention_days": 30}, headers=ops
    )
    assert r.status_code == 403
    r = await c.put(
        f"/api/meetings/{mid}/recording/policy", json={"retention_days": 30}, headers=chair
    )
    assert r.status_code == 200 and r.json()["record_program"] is True

    assert (await c.post(f"/api/meetings/{mid}/start", headers=chair)).status_code == 200
    bots: list[PublisherBot] = []
    try:
        chair_grant = orch.chair_media_grant(mid)
        bots.append(PublisherBot(target(chair_grant), chair_grant["publish"]["feed_id"], "CHU TRI"))
        for code in ("26734", "00004"):
            grant = await orch.site_media_grant(code)
            bots.append(PublisherBot(target(grant), grant["publish"]["feed_id"], f"SITE {code}"))
        for bot in bots:
            await bot.start()
        for code in ("26734", "00004"):
            await env.connect(code)  # a site joins only while its session is up
        for headers in (ben_nghe, ba_dinh):
            r = await c.post(f"/api/site/meetings/{mid}/join", headers=headers)
            assert r.status_code == 200, r.text

        async def segments_with(n: int) -> bool:
            return any(
                len(s["feeds"]) == n for s in await _segments(env, mid) if s["kind"] == "program"
            )

        await wait_for(lambda: segments_with(1), 10, "the chair's feed recorded")
        r = await c.post(f"/api/site/meetings/{mid}/hand", headers=ben_nghe)
        assert r.status_code == 200, r.text
        assert (
            await c.post(f"/api/meetings/{mid}/floor/mute-all", headers=chair)
        ).status_code == 200
        r = await c.post(
            "/api/command/directives",
            json={
                "title": "Sơ tán vùng trũng",
                "body": "Hoàn thành trước 17 giờ",
                "target": {"provinces": ["79", "01"]},
            },
            headers=chair,
        )
        assert r.status_code in (200, 201), r.text
        await asyncio.sleep(2)
        for code in ("26734", "00004"):
            r = await c.post(
                f"/api/meetings/{mid}/floor/grant", json={"site_codes": [code]}, headers=chair
            )
            assert r.status_code == 200, r.text

            async def speaker_recorded(code: str = code) -> bool:
                return any(
                    any(f["site_code"] == code for f in s["feeds"])
                    for s in await _segments(env, mid)
                )

            await wait_for(speaker_recorded, 10, f"{code}'s feed recorded")
            await asyncio.sleep(3)
        r = await c.post(f"/api/meetings/{mid}/floor/revoke", json={}, headers=chair)
        assert r.status_code == 200, r.text
        await asyncio.sleep(1.5)
        r = await c.post(
            f"/api/meetings/{mid}/conclusions", json={"body": "Sơ tán trước 17 giờ."}, headers=chair
        )
        assert r.status_code in (200, 201), r.text
        assert (await c.post(f"/api/meetings/{mid}/end", headers=chair)).status_code == 200
    finally:
        for bot in bots:
            await bot.stop()
    await svc.wait_processed(timeout=180)

    # --- files: the program and a clip per intervention, playable -------------------
    r = await c.get(f"/api/meetings/{mid}/recording", headers=chair)
    assert r.status_code == 200
    body = r.json()
    assert body["policy"]["state"] == "done", body["policy"]
    files = {(f["kind"], f["site_code"]): f for f in body["files"]}
    assert set(files) == {("program", None), ("clip", "26734"), ("clip", "00004")}
    program = files[("program", None)]
    root = svc.config.root
    info = probe(root / f"m{mid}" / "program.webm")
    assert sorted(s["codec_name"] for s in info["streams"]) == ["opus", "vp8"]
    meeting = (await c.get(f"/api/meetings/{mid}", headers=chair)).json()
    length = (
        datetime.fromisoformat(meeting["ended_at"]) - datetime.fromisoformat(meeting["started_at"])
    ).total_seconds()
    assert length - 3.0 <= float(info["format"]["duration"]) <= length + 0.5, (info, length)
    timeline = (await c.get(f"/api/meetings/{mid}/timeline", headers=chair)).json()
    grants = [e for e in timeline["events"] if e["kind"] == "floor.grant"]
    assert [g["site_code"] for g in grants] == ["26734", "00004"]
    for code, grant in zip(("26734", "00004"), grants, strict=True):
        clip = files[("clip", code)]
        assert grant["file_id"] == clip["id"]
        info = probe(root / f"m{mid}" / f"clip-{clip['floor_id']}-{code}.webm")
        assert sorted(s["codec_name"] for s in info["streams"]) == ["opus", "vp8"]
        assert 2.0 <= float(info["format"]["duration"]) <= 6.0, info
        r = await c.get(f"/api/recordings/{clip['id']}", headers=chair)
        assert r.status_code == 200 and r.headers["x-content-sha256"] == clip["sha256"]
        labels, times, corrupt = stamps(r.content)
        assert corrupt == 0
        assert set(labels) == {label_code(f"SITE {code}")}, labels
        assert sum(labels.values()) >= 40
        start, end = (
            ms32(datetime.fromisoformat(clip["started_at"])),
            ms32(datetime.fromisoformat(clip["ended_at"])),
        )
        # The program switches once the decision is committed and announced (a few hundred
        # ms on a loaded machine): frames sent just before or after the recorded times.
        assert start - 1500 <= min(times) and max(times) <= end + 1500, (start, end, times[:3])
        assert grant["offset_s"] is not None and 0 < grant["offset_s"] < program["duration_s"]
    # --- the timeline matches the meeting's events, in order -------------------------
    kinds = [e["kind"] for e in timeline["events"]]
    assert kinds[0] == "meeting.start" and kinds[-1] == "meeting.end"
    assert kinds.count("floor.revoke") == 2 and kinds.count("attendance.join") == 2
    assert kinds.count("conclusion.publish") == 1
    assert kinds.count("hand.raise") == 1 and kinds.count("hand.close") == 1
    assert kinds.count("floor.mute_all") == 1 and kinds.count("directive.issue") == 1
    [closed] = [e for e in timeline["events"] if e["kind"] == "hand.close"]
    assert closed["details"]["outcome"] == "granted" and closed["site_code"] == "26734"
    ats = [e["at"] for e in timeline["events"]]
    assert ats == sorted(ats)
    offsets = [e["offset_s"] for e in timeline["events"] if e["offset_s"] is not None]
    assert offsets == sorted(offsets)
    assert (
        await c.get(f"/api/meetings/{mid}/timeline?kinds=nope", headers=chair)
    ).status_code == 422

    # --- who may fetch what ----------------------------------------------------------
    clip_hcm, clip_hn = files[("clip", "26734")]["id"], files[("clip", "00004")]["id"]
    assert (await c.get(f"/api/recordings/{program['id']}", headers=ben_nghe)).status_code == 403
    assert (await c.get(f"/api/recordings/{clip_hcm}", headers=ben_nghe)).status_code == 403
    assert (await c.get(f"/api/recordings/{clip_hcm}", headers=ops)).status_code == 403
    assert (await c.get(f"/api/recordings/{clip_hcm}", headers=hcm)).status_code == 200
    assert (await c.get(f"/api/recordings/{clip_hn}", headers=hcm)).status_code == 403
    assert (await c.get(f"/api/recordings/{program['id']}", headers=hcm)).status_code == 403
    # A <video> plays through a file-bound ticket, in byte ranges; forged or misused: refused.
    r = await c.post(f"/api/recordings/{program['id']}/ticket", headers=chair)
    watch = r.json()["url"]
    r = await c.get(watch, headers={"Range": "bytes=0-99"})
    assert r.status_code == 206 and len(r.content) == 100
    assert (await c.post(f"/api/recordings/{program['id']}/ticket", headers=hcm)).status_code == 403
    other = watch.replace(f"/recordings/{program['id']}/", f"/recordings/{clip_hcm}/")
    assert (await c.get(other)).status_code == 403
    assert (await c.get(watch[:-4] + "AAAA")).status_code == 403
    listed = (await c.get(f"/api/meetings/{mid}/recording", headers=hcm)).json()["files"]
    assert [f["site_code"] for f in listed] == ["26734"]
    officer_tl = (await c.get(f"/api/meetings/{mid}/timeline", headers=hcm)).json()
    assert "00004" not in json.dumps(officer_tl) and officer_tl["program_file_id"] is None
    assert (await c.get(f"/api/meetings/{mid}/timeline", headers=ben_nghe)).status_code == 403

    # --- minutes: draft, publish, the PDF's attendance, a site reads and acknowledges -
    assert (
        await c.get(f"/api/site/meetings/{mid}/minutes.pdf", headers=ben_nghe)
    ).status_code == 404
    draft = (await c.get(f"/api/meetings/{mid}/minutes", headers=chair)).json()
    assert draft["state"] == "draft" and draft["version"] == 0
    r = await c.put(
        f"/api/meetings/{mid}/minutes",
        json={"texts": {"summary": "Hai điểm cầu đã báo cáo."}, "version": 0},
        headers=chair,
    )
    assert r.status_code == 200 and r.json()["version"] == 1
    stale = await c.put(
        f"/api/meetings/{mid}/minutes",
        json={"texts": {"summary": "x"}, "version": 0},
        headers=chair,
    )
    assert stale.status_code == 409
    bad = await c.put(
        f"/api/meetings/{mid}/minutes", json={"texts": {"title": "x"}, "version": 1}, headers=chair
    )
    assert bad.status_code == 422
    r = await c.post(f"/api/meetings/{mid}/minutes/publish", headers=chair)
    assert r.status_code == 200, r.text
    r = await c.get(f"/api/site/meetings/{mid}/minutes.pdf", headers=ben_nghe)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(r.content)).pages)
    assert "BIÊN BẢN CUỘC HỌP" in text and "Giao ban phòng chống bão" in text
    # Per province: invited 1, present 1, late 0, absent 0; two interventions, totals 2 2 0 0.
    assert "Thành phố Hồ Chí Minh 1 1 0 0" in text and "Thành phố Hà Nội 1 1 0 0" in text
    assert "Tổng cộng 2 2 0 0" in text and "Hai điểm cầu đã báo cáo." in text
    assert "Sơ tán vùng trũng" in text and "Sơ tán trước 17 giờ." in text
    minutes = (await c.get(f"/api/meetings/{mid}/minutes", headers=chair)).json()
    cid = minutes["conclusion_id"]
    # The conclusion every site receives links the PDF (a plain link the terminal opens).
    conclusions = (await c.get(f"/api/meetings/{mid}/conclusions", headers=chair)).json()
    [sent] = [x for x in conclusions if x["id"] == cid]
    [pdf] = sent["attachments"]
    assert pdf["content_type"] == "application/pdf" and len(pdf["sha256"]) == 64
    r = await c.get(pdf["url"])
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    assert minutes["read_receipts"] == {"read": 0, "invited": 2}
    r = await c.post(f"/api/site/conclusions/{cid}/ack", headers=ben_nghe)
    assert r.status_code == 200
    minutes = (await c.get(f"/api/meetings/{mid}/minutes", headers=chair)).json()
    assert minutes["read_receipts"] == {"read": 1, "invited": 2}
    assert (await c.post(f"/api/meetings/{mid}/minutes/publish", headers=chair)).status_code == 409

    # --- integrity: a tampered clip is refused and reported --------------------------
    path = root / f"m{mid}" / f"clip-{files[('clip', '26734')]['floor_id']}-26734.webm"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    r = await c.get(f"/api/recordings/{clip_hcm}", headers=chair)
    assert r.status_code == 409 and r.json()["error"]["code"] == "tampered"
    async with env.runtime.db.session() as s:
        actions = (
            await s.scalars(select(AuditEntry.action).where(AuditEntry.meeting_id == mid))
        ).all()
    assert "recording.tampered" in actions and "minutes.publish" in actions
    assert "recording.policy" in actions
    # Deleting is the admin's, audited; the file is gone and its row says who and when.
    assert (
        await c.delete(f"/api/recordings/{clip_hn}?reason=test", headers=chair)
    ).status_code == 403
    r = await c.delete(f"/api/recordings/{clip_hn}?reason=thử nghiệm", headers=admin)
    assert r.status_code == 200 and r.json()["deleted_at"] is not None
    assert (await c.get(f"/api/recordings/{clip_hn}", headers=chair)).status_code == 404


async def _segments(env: ApiEnv, meeting_id: int) -> list[dict[str, Any]]:
    from diemcau.recording.models import RecordingSegment

    async with env.runtime.db.session() as s:
        rows = (
            await s.scalars(
                select(RecordingSegment).where(RecordingSegment.meeting_id == meeting_id)
            )
        ).all()
        return [
            {"seq": r.seq, "kind": r.kind, "feeds": r.feeds, "ended_at": r.ended_at} for r in rows
        ]


async def test_publishers_cannot_make_janus_record(tmp_path: Path) -> None:
    """``lock_record`` stops configure/publish; 1.1.2 ignores it for joinandconfigure, where the
    unwritable ``rec_dir`` stops it: a hostile publisher's files are written nowhere."""
    cluster = LocalCluster()
    await cluster.start()
    ctl = NodeControl(cluster.central.node)
    node = cluster.central.node
    try:
        for i, request in enumerate(("publish", "joinandconfigure")):
            room = 9100 + i
            await ctl.ensure_room(room, "hostile")
            # The control plane's own token: the only one the room lets publish.
            grant = JanusTarget(
                node.browser_ws_url, room, node.browser_token(60), ctl.control_token(room)
            )
            bot = _RecordingPublisher(grant, 500 + i, "X", request, str(tmp_path / f"evil-{i}"))
            try:
                await bot.start()
                await asyncio.sleep(1.0)
            finally:
                await bot.stop()
            assert list(tmp_path.glob("evil-*")) == [], request
            assert not (tmp_path / f"evil-{i}-video-1.mjr").exists()
    finally:
        await ctl.close()
        await cluster.stop()


class _RecordingPublisher(PublisherBot):
    """A publisher that asks Janus to record it into a file of its choosing."""

    def __init__(self, t: JanusTarget, feed: int, label: str, request: str, filename: str) -> None:
        super().__init__(t, feed, label)
        self.request = request
        self.filename = filename

    async def start(self, timeout: float = 10.0) -> None:
        from aiortc import RTCSessionDescription

        handle = await self._open()
        assert self.audio is not None
        self.pc.addTrack(self.audio)
        self.pc.addTrack(self.video)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        offer = Jsep(type=self.pc.localDescription.type, sdp=self.pc.localDescription.sdp)
        wish = {"record": True, "filename": self.filename}
        join = self._join_body(ptype="publisher", id=self.feed_id, display=self.label)
        if self.request == "joinandconfigure":
            reply = await handle.send({**join, **wish, "request": "joinandconfigure"}, jsep=offer)
        else:
            await handle.send(join)
            reply = await handle.send({"request": "publish", **wish}, jsep=offer)
        assert reply.jsep is not None
        await self.pc.setRemoteDescription(RTCSessionDescription(**reply.jsep))
        await self.wait_webrtcup(timeout)


async def test_spot_checks_are_recorded_only_where_the_policy_says_so(
    env: ApiEnv, orch: MediaOrchestrator
) -> None:
    c = env.client
    chair, hcm = await env.login("chair"), await env.login("hcm")
    ben_nghe, ba_dinh = await env.site("26734"), await env.site("00004")
    svc = env.runtime.recording
    r = await c.post(
        "/api/meetings",
        json={"title": "Kiểm tra trực tuyến", "invite": {"sites": ["26734", "00004"]}},
        headers=chair,
    )
    mid = r.json()["id"]
    assert (await c.post(f"/api/meetings/{mid}/start", headers=chair)).status_code == 200
    bots: list[PublisherBot] = []
    try:
        for code in ("26734", "00004"):
            grant = await orch.site_media_grant(code)
            bots.append(PublisherBot(target(grant), grant["publish"]["feed_id"], f"SITE {code}"))
            await bots[-1].start()
            await env.connect(code)  # a site joins only while its session is up
        for headers in (ben_nghe, ba_dinh):
            assert (
                await c.post(f"/api/site/meetings/{mid}/join", headers=headers)
            ).status_code == 200
        # Policy off (the default): the spot-check is watched and audited, not recorded.
        r = await c.get("/api/media/spot/26734", headers=chair)
        assert r.status_code == 200 and r.json()["recorded"] is False
        await asyncio.sleep(2)
        assert not [s for s in await _segments(env, mid) if s["kind"] == "inspect"]
        r = await c.put(
            f"/api/meetings/{mid}/recording/policy",
            json={"record_inspections": True},
            headers=chair,
        )
        assert r.status_code == 200
        r = await c.get("/api/media/spot/00004", headers=chair)
        assert r.status_code == 200 and r.json()["recorded"] is True

        async def inspected() -> bool:
            return any(
                s["kind"] == "inspect" and any(f["site_code"] == "00004" for f in s["feeds"])
                for s in await _segments(env, mid)
            )

        await wait_for(inspected, 10, "the inspected feed recorded at central")
        await asyncio.sleep(3)
        assert svc.inspections is not None
        await svc.inspections.end(mid)

        async def closed() -> bool:
            return all(
                s["ended_at"] is not None
                for s in await _segments(env, mid)
                if s["kind"] == "inspect"
            )

        await wait_for(closed, 10, "the inspection segment closed")
        assert (await c.post(f"/api/meetings/{mid}/end", headers=chair)).status_code == 200
    finally:
        for bot in bots:
            await bot.stop()
    await svc.wait_processed(timeout=120)
    files = (await c.get(f"/api/meetings/{mid}/recording", headers=chair)).json()["files"]
    inspections = [f for f in files if f["kind"] == "inspection"]
    assert [f["site_code"] for f in inspections] == ["00004"]
    r = await c.get(f"/api/recordings/{inspections[0]['id']}", headers=chair)
    assert r.status_code == 200
    labels, _times, corrupt = stamps(r.content)
    assert corrupt == 0 and set(labels) == {label_code("SITE 00004")}
    assert sum(labels.values()) >= 30
    # Both spot-checks are on the timeline; the recorded one links its file.
    events = (await c.get(f"/api/meetings/{mid}/timeline?kinds=inspection", headers=chair)).json()
    assert [(e["site_code"], e["details"]["recorded"]) for e in events["events"]] == [
        ("26734", False),
        ("00004", True),
    ]
    assert events["events"][1]["file_id"] == inspections[0]["id"]
    # A Hà Nội inspection is not for the Hồ Chí Minh City officer.
    r = await c.get(f"/api/recordings/{inspections[0]['id']}", headers=hcm)
    assert r.status_code == 403
