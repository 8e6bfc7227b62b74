"""Recording's parts without Janus: segments, layout, timing, integrity, retention, minutes.

Bad inputs tried: minutes parts that do not exist, text that is not text or too
long, a stale draft version, a retention of 0 days, a path that leaves the
recordings folder, a file altered with its modification time put back.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from diemcau.actors import Actor
from diemcau.audit.models import AuditEntry
from diemcau.directory.sites import SiteInfo
from diemcau.errors import Conflict, Invalid
from diemcau.recording.compose import FeedMedia, clip_part_args, concat_list, segment_args, tiles
from diemcau.recording.config import RecordingConfig
from diemcau.recording.files import FileStore, NewFile
from diemcau.recording.integrity import IntegrityError, Verifier
from diemcau.recording.minutes import MinutesContent, minutes_content
from diemcau.recording.models import RecordingSegment
from diemcau.recording.policy import Policies, PolicyChange
from diemcau.recording.publication import clean_texts
from diemcau.recording.render import minutes_pdf
from diemcau.recording.retention import DISK_ALERT, DiskWatch, Retention
from diemcau.recording.segments import LiveRecorder
from diemcau.recording.timeline import MeetingFacts, program_offset
from diemcau.store import Database

T0 = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)


def config(tmp_path: Path, **kw: Any) -> RecordingConfig:
    root = tmp_path / "rec"
    return RecordingConfig(root=root, node_root="/node/rec", **kw)


# --- layout and command lines ----------------------------------------------------------


def test_tiles_put_the_chair_first_and_cover_the_canvas() -> None:
    assert [(t.x, t.w) for t in tiles(1, 854, 480)] == [(0, 854)]
    two = tiles(2, 854, 480)
    assert [(t.x, t.w, t.h) for t in two] == [(0, 426, 480), (426, 428, 480)]
    three = tiles(3, 854, 480)
    assert three[0].h == 480 and three[1].h + three[2].h == 480 and three[2].y == three[1].h
    assert all(t.w % 2 == 0 and t.h % 2 == 0 for n in range(1, 7) for t in tiles(n, 854, 480))


def test_segment_args_align_each_feed_on_the_wall_clock(tmp_path: Path) -> None:
    chair = FeedMedia(1, "chair", None, tmp_path / "c.webm", 100.2, tmp_path / "c.opus", 100.1)
    speaker = FeedMedia(
        2, "floor", "26734", tmp_path / "s.webm", 101.5, tmp_path / "s.opus", 101.25
    )
    args = segment_args([speaker, chair], 100.0, 8.0, tmp_path / "out.webm", canvas=(854, 480))
    graph = args[args.index("-filter_complex") + 1]
    # Inputs in role order (chair first), offsets from the segment start.
    assert args.index(str(tmp_path / "c.webm")) < args.index(str(tmp_path / "s.webm"))
    assert "setpts=PTS-STARTPTS+0.200/TB" in graph and "setpts=PTS-STARTPTS+1.500/TB" in graph
    assert "adelay=100:all=1" in graph and "adelay=1250:all=1" in graph
    assert "amix=inputs=2" in graph and "atrim=0:8.000" in graph
    assert args[args.index("-t") + 1] == "8.000" and args[-1] == str(tmp_path / "out.webm")
    silent = segment_args(
        [FeedMedia(1, "chair", None, tmp_path / "c.webm", 100.0)], 100.0, 2.0, tmp_path / "o.webm"
    )
    assert "anullsrc" in silent[silent.index("-filter_complex") + 1]


def test_clip_and_concat_args(tmp_path: Path) -> None:
    feed = FeedMedia(2, "floor", "A", tmp_path / "v.webm", 10.5, tmp_path / "a.opus", 10.0)
    args = clip_part_args(feed, tmp_path / "part.webm")
    assert args[args.index("-itsoffset") + 1] == "0.500" and "copy" in args
    with pytest.raises(ValueError):
        clip_part_args(FeedMedia(3, "floor", "B"), tmp_path / "x.webm")
    listing = concat_list([tmp_path / "it's.webm"])
    assert listing == f"file '{tmp_path}/it'\\''s.webm'\n"


def test_config_refuses_paths_outside_the_root(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    assert cfg.path("m1/program.webm") == cfg.root / "m1" / "program.webm"
    assert cfg.node_path("m1/seg-0001") == "/node/rec/m1/seg-0001"
    for bad in ("../x", "/etc/passwd", "m1/../../x"):
        with pytest.raises(ValueError):
            cfg.path(bad)


# --- the program's timing --------------------------------------------------------------


@dataclass
class _File:
    timing: list[list[Any]]
    id: int = 1
    kind: str = "program"


def test_program_offset_maps_wall_clock_to_the_file() -> None:
    f = _File([[T0.isoformat(), 0.0, 10.0], [(T0 + timedelta(seconds=30)).isoformat(), 10.0, 5.0]])
    assert program_offset(f, T0 + timedelta(seconds=4)) == 4.0  # type: ignore[arg-type]
    # A pause (nothing recorded) lands on the start of the next stretch.
    assert program_offset(f, T0 + timedelta(seconds=20)) == 10.0  # type: ignore[arg-type]
    assert program_offset(f, T0 + timedelta(seconds=32)) == 12.0  # type: ignore[arg-type]
    assert program_offset(f, T0 + timedelta(seconds=40)) is None  # type: ignore[arg-type]
    assert program_offset(f, T0 - timedelta(seconds=3)) == 0.0  # type: ignore[arg-type]
    assert program_offset(None, T0) is None


# --- live segments (a fake media port) -------------------------------------------------


@dataclass
class FakePort:
    feeds: dict[int, tuple[str, str | None]] | None = field(default_factory=dict)
    started: list[str] = field(default_factory=list)
    stops: int = 0

    async def publishers(
        self, meeting_id: int, room: str = "program"
    ) -> Mapping[int, tuple[str, str | None]] | None:
        return self.feeds

    async def record(self, meeting_id: int, node_folder: str, room: str = "program") -> bool:
        self.started.append(node_folder)
        return True

    async def stop(self, meeting_id: int, room: str = "program") -> None:
        self.stops += 1

    async def inspect(self, meeting_id: int, site_code: str | None) -> bool:
        return True


async def _segments(db: Database) -> list[RecordingSegment]:
    async with db.session() as s:
        return list(
            (await s.scalars(select(RecordingSegment).order_by(RecordingSegment.seq))).all()
        )


async def test_a_new_segment_starts_whenever_the_feeds_change(db: Database, tmp_path: Path) -> None:
    port, want = FakePort({1: ("chair", None)}), {"on": True}
    clock = [T0.timestamp()]

    async def wanted(_m: int) -> bool:
        return want["on"]

    live = LiveRecorder(db, port, config(tmp_path), clock=lambda: clock[0], wanted=wanted)
    await live.follow(7)
    await live.check(7)
    await live.check(7)  # nothing changed: nothing happens
    assert port.started == ["/node/rec/m7/seg-0001"]
    clock[0] += 5
    port.feeds = {1: ("chair", None), 2: ("floor", "26734")}
    await live.check(7)
    clock[0] += 5
    want["on"] = False  # the chair switches recording off mid-meeting
    await live.check(7)
    assert port.stops == 1
    segs = await _segments(db)
    assert [s.seq for s in segs] == [1, 2]
    assert segs[0].ended_at == segs[1].started_at == T0 + timedelta(seconds=5)
    assert segs[1].feeds == [
        {"feed_id": 1, "role": "chair", "site_code": None},
        {"feed_id": 2, "role": "floor", "site_code": "26734"},
    ]
    assert segs[1].ended_at == T0 + timedelta(seconds=10)
    assert (tmp_path / "rec" / "m7" / "seg-0002").is_dir()
    # No program on the node (yet): nothing is started.
    want["on"], port.feeds = True, None
    await live.check(7)
    assert len(port.started) == 2


async def test_a_restart_resumes_and_closes_the_segment_left_open(
    db: Database, tmp_path: Path
) -> None:
    port = FakePort({1: ("chair", None)})

    async def wanted(_m: int) -> bool:
        return True

    first = LiveRecorder(db, port, config(tmp_path), clock=lambda: T0.timestamp(), wanted=wanted)
    await first.follow(3)
    await first.check(3)
    # The control server stops without closing (Janus keeps recording); a new one resumes.
    later = (T0 + timedelta(seconds=60)).timestamp()
    second = LiveRecorder(db, port, config(tmp_path), clock=lambda: later, wanted=wanted)
    await second.follow(3)
    await second.check(3)
    segs = await _segments(db)
    assert [s.seq for s in segs] == [1, 2]
    assert segs[0].ended_at == T0 + timedelta(seconds=60) and segs[1].ended_at is None
    await second.unfollow(3, T0 + timedelta(seconds=90))
    assert (await _segments(db))[1].ended_at == T0 + timedelta(seconds=90)


# --- integrity ---------------------------------------------------------------------------


async def test_a_changed_file_is_caught_even_with_its_time_put_back(tmp_path: Path) -> None:
    path = tmp_path / "clip.webm"
    path.write_bytes(b"x" * 1000)
    from diemcau.recording.integrity import sha256_file

    digest = await sha256_file(path)
    v = Verifier()
    await v.verify(path, digest)
    await v.verify(path, digest)  # remembered
    st = path.stat()
    path.write_bytes(b"y" + b"x" * 999)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(IntegrityError, match="SHA-256"):
        await v.verify(path, digest)
    path.unlink()
    with pytest.raises(IntegrityError, match="missing"):
        await v.verify(path, digest)


# --- policy, retention, disk -----------------------------------------------------------


async def test_policy_changes_are_checked_and_audited(db: Database) -> None:
    p = Policies(db)
    assert (await p.get(5)).record_program is True
    chair = Actor.for_staff("chair", "chair", user_id=1)
    with pytest.raises(Invalid):
        await p.change(chair, 5, PolicyChange(retention_days=0), T0)
    assert (await p.get(5)).retention_days is None
    _, after = await p.change(chair, 5, PolicyChange(record_inspections=True, retention_days=7), T0)
    assert after.record_inspections and after.retention_days == 7 and after.record_program
    async with db.session() as s:
        assert (await s.scalars(select(AuditEntry.action))).all() == ["recording.policy"]


@dataclass
class FakeAlerts:
    raised: list[tuple[str, str, str]] = field(default_factory=list)
    cleared: list[str] = field(default_factory=list)

    async def raise_alert(
        self,
        kind: str,
        key: str,
        *,
        message_vi: str,
        message_en: str,
        severity: str = "warning",
        details: Mapping[str, Any] | None = None,
    ) -> None:
        self.raised.append((kind, severity, message_vi))

    async def clear_alert(self, kind: str, key: str) -> None:
        self.cleared.append(kind)


async def test_retention_deletes_due_files_with_an_audit_record(
    db: Database, tmp_path: Path
) -> None:
    cfg = config(tmp_path)
    files = FileStore(db, cfg)
    for name, due in (("old.webm", T0 - timedelta(days=1)), ("new.webm", T0 + timedelta(days=1))):
        cfg.path(f"m1/{name}").parent.mkdir(parents=True, exist_ok=True)
        cfg.path(f"m1/{name}").write_bytes(b"data")
        await files.add(NewFile(1, "clip", f"m1/{name}", "video/webm", delete_after=due), T0)
    assert await Retention(db, cfg, files).sweep(T0) == 1
    left = await files.of_meeting(1)
    assert [f.name for f in left] == ["new.webm"]
    assert not cfg.path("m1/old.webm").exists() and cfg.path("m1/new.webm").exists()
    [gone] = [f for f in await files.of_meeting(1, deleted=True) if f.deleted_at]
    assert gone.deleted_at == T0 and gone.name == "old.webm"
    async with db.session() as s:
        row = (await s.scalars(select(AuditEntry))).one()
    assert (row.action, row.actor_name, row.target) == ("recording.delete", "retention", "old.webm")
    with pytest.raises(Conflict):
        await Retention(db, cfg, files).delete(Actor.system(), gone, "again", T0)


async def test_the_disk_alert_is_raised_before_the_disk_fills_and_cleared(
    db: Database, tmp_path: Path
) -> None:
    alerts = FakeAlerts()
    full = DiskWatch(
        config(tmp_path, warn_fraction=0.0, critical_fraction=2.0, min_free_bytes=0),
        FileStore(db, config(tmp_path)),
        alerts,
    )
    usage = await full.check([])
    assert usage.level == "warning" and alerts.raised[0][:2] == (DISK_ALERT, "warning")
    assert "sắp đầy" in alerts.raised[0][2]
    tight = DiskWatch(
        config(tmp_path, min_free_bytes=1 << 62), FileStore(db, config(tmp_path)), alerts
    )
    assert (await tight.check([])).level == "critical"
    # At the current rate the disk fills in less than an hour: a warning too.
    clock = [0.0]
    rate = DiskWatch(
        config(tmp_path, warn_fraction=2.0, critical_fraction=2.0, min_free_bytes=0),
        FileStore(db, config(tmp_path)),
        alerts,
        monotonic=lambda: clock[0],
    )
    live = tmp_path / "rec" / "m9"
    live.mkdir(parents=True)
    await rate.check(["m9"])
    (live / "a.mjr").write_bytes(b"x" * 4096)
    clock[0] = 1e-9  # 4 KiB in a nanosecond: any disk fills within the hour
    assert (await rate.check(["m9"])).level == "warning"
    ok = DiskWatch(
        config(tmp_path, warn_fraction=2.0, critical_fraction=2.0, min_free_bytes=0),
        FileStore(db, config(tmp_path)),
        alerts,
    )
    ok._raised = "warning"
    assert (await ok.check([])).level == "ok" and alerts.cleared == [DISK_ALERT]


# --- minutes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Meeting:
    id: int = 4
    title: str = "Họp ứng phó bão"
    agenda: str = "1. Tình hình"
    state: str = "ended"
    chair_user_id: int = 1
    chair_name: str = "Nguyễn Văn Chủ"
    delegates: tuple[int, ...] = ()
    started_at: datetime | None = T0
    ended_at: datetime | None = T0 + timedelta(hours=1)
    late_after_s: int = 300


@dataclass(frozen=True)
class _Interval:
    site_id: int
    joined_at: datetime
    left_at: datetime | None = None
    left_reason: str | None = None


def _site(sid: int, code: str, province: str) -> SiteInfo:
    return SiteInfo(
        sid,
        code,
        f"Xã {code}",
        "commune",
        sid,
        sid // 10,
        province[:2],
        province,
        None,
        None,
        1,
        False,
    )


def test_minutes_count_present_late_and_absent_per_province(tmp_path: Path) -> None:
    sites = {
        11: _site(11, "00004", "Hà Nội"),
        12: _site(12, "00008", "Hà Nội"),
        21: _site(21, "26734", "Hồ Chí Minh"),
        22: _site(22, "26740", "Hồ Chí Minh"),
    }
    facts = MeetingFacts(
        meeting=_Meeting(),
        participants=[11, 12, 21, 22],
        attendance=[
            _Interval(11, T0 + timedelta(seconds=10)),
            _Interval(21, T0 + timedelta(minutes=20)),  # late
            _Interval(21, T0 + timedelta(minutes=40)),  # a second interval changes nothing
        ],
        floor=[],
        hands=[],
        conclusions=[],
        directives=[],
        audit=[],
        files=[],
    )
    content = minutes_content(facts, sites, {"summary": "Đủ"})
    rows = {p.province: (p.invited, p.present, p.late, p.absent) for p in content.provinces}
    assert rows == {"Hà Nội": (2, 1, 0, 1), "Hồ Chí Minh": (2, 1, 1, 1)}
    assert (content.totals.invited, content.totals.present, content.totals.absent) == (4, 2, 2)
    assert content.started_at == "30/11/2026 08:00:00"  # UTC+07:00
    assert MinutesContent.from_json(content.as_json()) == content
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(minutes_pdf(content))).pages)
    assert "Hồ Chí Minh 2 1 1 1" in text and "Tổng cộng 4 2 1 2" in text
    assert "Nguyễn Văn Chủ" in text


def test_minutes_text_parts_are_checked() -> None:
    assert clean_texts({"summary": " Tóm tắt \n"}) == {"summary": "Tóm tắt"}
    for bad in ({"title": "x"}, {"summary": 3}, {"closing": "x" * 20001}):
        with pytest.raises(Invalid):
            clean_texts(bad)
