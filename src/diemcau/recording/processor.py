"""Post-processing: a finished meeting's Janus segments become its program file and its clips.

Run once per meeting after it ends (and again after a restart if it had not
finished), one meeting at a time in the background. Each segment's feeds are
converted with janus-pp-rec, composed into a program part, the parts joined;
each floor grant's feed is remuxed into its own clip, and each recorded
spot-check (the meeting's ``inspect`` segments) into an inspection file. Files are written under a
temporary name and renamed when complete, then registered with their SHA-256.
The raw ``.mjr`` segments are removed once every file is registered.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from diemcau.directory.sites import SiteDirectory
from diemcau.recording import compose
from diemcau.recording.compose import FeedMedia
from diemcau.recording.config import RecordingConfig
from diemcau.recording.files import FileStore, NewFile
from diemcau.recording.models import RecordingSegment, Timing
from diemcau.recording.policy import Policies
from diemcau.recording.ports import FloorHistory, FloorRecord
from diemcau.recording.tools import ToolError, Tools, mjr_files
from diemcau.store import Database
from diemcau.tasks import cancel_and_wait

__all__ = ["PostProcessor", "SegmentMedia"]

log = logging.getLogger(__name__)

WEBM = "video/webm"
MEDIA_KINDS = ("program", "clip", "inspection")


@dataclass(frozen=True)
class SegmentMedia:
    """One closed segment, its wall-clock span and its converted feeds."""

    seq: int
    start: datetime
    end: datetime
    feeds: tuple[FeedMedia, ...]
    kind: str = "program"

    @property
    def duration(self) -> float:
        return max(0.0, (self.end - self.start).total_seconds())


class PostProcessor:
    """A queue of meetings to process and the worker that processes them."""

    def __init__(
        self,
        db: Database,
        config: RecordingConfig,
        files: FileStore,
        policies: Policies,
        history: FloorHistory,
        sites: SiteDirectory,
        *,
        tools: Tools | None = None,
        clock: Callable[[], float],
    ) -> None:
        self.db = db
        self.config = config
        self.files = files
        self.policies = policies
        self.history = history
        self.sites = sites
        self.tools = tools or Tools(
            pp_rec=config.pp_rec, ffmpeg=config.ffmpeg, ffprobe=config.ffprobe
        )
        self.clock = clock
        self._queue: asyncio.Queue[int] = asyncio.Queue()
        self._queued: set[int] = set()
        self._task: asyncio.Task[None] | None = None
        self.idle = asyncio.Event()
        self.idle.set()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._work(), name="recording-postprocess")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task, timeout=10.0)

    def enqueue(self, meeting_id: int) -> None:
        if meeting_id not in self._queued:
            self._queued.add(meeting_id)
            self.idle.clear()
            self._queue.put_nowait(meeting_id)

    async def _work(self) -> None:
        while True:
            meeting_id = await self._queue.get()
            try:
                await self.policies.set_state(meeting_id, "processing")
                await self.process(meeting_id)
                await self.policies.set_state(meeting_id, "done", at=self.now())
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("post-processing of meeting %s failed", meeting_id)
                await self.policies.set_state(meeting_id, "failed", error=str(exc), at=self.now())
            finally:
                self._queued.discard(meeting_id)
                if not self._queued:
                    self.idle.set()

    # --- one meeting ------------------------------------------------------------------

    async def process(self, meeting_id: int) -> None:
        """Write and register the program and the clips of one meeting."""
        async with self.db.session() as s:
            rows = (
                await s.scalars(
                    select(RecordingSegment)
                    .where(
                        RecordingSegment.meeting_id == meeting_id,
                        RecordingSegment.ended_at.is_not(None),
                    )
                    .order_by(RecordingSegment.started_at, RecordingSegment.id)
                )
            ).all()
        folder = f"m{meeting_id}"
        work = self.config.path(f"{folder}/work")
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        segments = [await self._convert(row, work) for row in rows if row.kind == "program"]
        inspected = [await self._convert(row, work) for row in rows if row.kind == "inspect"]
        await self.files.drop_unfinished(meeting_id, MEDIA_KINDS)
        delete_after = await self._delete_after(meeting_id)
        await self._program(meeting_id, segments, work, delete_after)
        for grant in await self.history.floor(meeting_id):
            await self._clip(meeting_id, grant, segments, work, delete_after)
        for seg in inspected:
            await self._inspection(meeting_id, seg, work, delete_after)
        shutil.rmtree(work, ignore_errors=True)
        for row in rows:
            shutil.rmtree(self.config.path(row.folder), ignore_errors=True)

    async def _delete_after(self, meeting_id: int) -> datetime | None:
        policy = await self.policies.get(meeting_id)
        days = policy.retention_days or self.config.retention_days
        if days <= 0:
            return None
        meeting = await self.history.meeting(meeting_id)
        end = (meeting.ended_at if meeting else None) or self.now()
        return end + timedelta(days=days)

    async def _convert(self, row: RecordingSegment, work: Path) -> SegmentMedia:
        """janus-pp-rec every feed's first audio and video file of one segment."""
        assert row.ended_at is not None
        roles = {int(f["feed_id"]): f for f in row.feeds}
        chosen: dict[tuple[int, str], Path] = {}
        for mjr in mjr_files(self.config.path(row.folder)):
            if mjr.kind in ("audio", "video"):
                chosen.setdefault((mjr.feed_id, mjr.kind), mjr.path)
        feeds: list[FeedMedia] = []
        for fid in sorted({fid for fid, _ in chosen}):
            info = roles.get(fid)
            parts: dict[str, tuple[Path, float]] = {}
            for kind, ext in (("video", "webm"), ("audio", "opus")):
                src = chosen.get((fid, kind))
                if src is None:
                    continue
                try:
                    header = await self.tools.header(src)
                    first_us = header.get("u")
                    if not isinstance(first_us, int) or first_us <= 0:
                        continue  # opened but nothing ever written
                    out = work / f"{row.kind}{row.seq:04d}-{fid}-{kind}.{ext}"
                    await self.tools.convert(src, out)
                except ToolError as exc:
                    log.warning("segment %s feed %s %s skipped: %s", row.folder, fid, kind, exc)
                    continue
                parts[kind] = (out, first_us / 1e6)
            if not parts:
                continue
            video, audio = parts.get("video"), parts.get("audio")
            feeds.append(
                FeedMedia(
                    feed_id=fid,
                    role=info["role"] if info else "other",
                    site_code=info["site_code"] if info else None,
                    video=video[0] if video else None,
                    video_start=video[1] if video else 0.0,
                    audio=audio[0] if audio else None,
                    audio_start=audio[1] if audio else 0.0,
                )
            )
        return SegmentMedia(row.seq, row.started_at, row.ended_at, tuple(feeds), row.kind)

    async def _program(
        self,
        meeting_id: int,
        segments: Sequence[SegmentMedia],
        work: Path,
        delete_after: datetime | None,
    ) -> None:
        parts: list[Path] = []
        timing: list[Timing] = []
        offset = 0.0
        for seg in segments:
            if not seg.feeds or seg.duration < 0.2:
                continue
            part = work / f"program-{seg.seq:04d}.webm"
            args = compose.segment_args(
                seg.feeds, seg.start.timestamp(), seg.duration, part, canvas=self.config.canvas
            )
            await self.tools.ffmpeg_run(args)
            length = await self.tools.duration(part)
            parts.append(part)
            timing.append([seg.start.isoformat(), round(offset, 3), round(length, 3)])
            offset += length
        if not parts:
            return
        name = f"m{meeting_id}/program.webm"
        await self._join(parts, work, self.config.path(name))
        await self._add(
            NewFile(
                meeting_id=meeting_id,
                kind="program",
                path=name,
                content_type=WEBM,
                started_at=segments[0].start,
                ended_at=segments[-1].end,
                timing=timing,
                delete_after=delete_after,
            )
        )

    async def _add(self, new: NewFile) -> None:
        """Register a finished file of this meeting with the duration measured on disk."""
        duration = await self.tools.duration(self.config.path(new.path))
        await self.files.add(replace(new, duration_s=duration), self.now())

    async def _join(self, parts: Sequence[Path], work: Path, out: Path) -> None:
        """Concatenate ``parts`` into ``out`` (via a temporary name, renamed when complete)."""
        listing = work / f"{out.stem}.txt"
        listing.write_text(compose.concat_list(parts), encoding="utf-8")
        tmp = work / f"{out.stem}.partial.webm"
        await self.tools.ffmpeg_run(compose.concat_args(listing, tmp))
        tmp.replace(out)

    async def _clip(
        self,
        meeting_id: int,
        grant: FloorRecord,
        segments: Sequence[SegmentMedia],
        work: Path,
        delete_after: datetime | None,
    ) -> None:
        site = await self.sites.get(grant.site_id)
        if site is None:
            return
        until = grant.revoked_at or (segments[-1].end if segments else grant.granted_at)
        parts: list[Path] = []
        first: float | None = None
        last = 0.0
        for seg in segments:
            if seg.end <= grant.granted_at or seg.start >= until:
                continue
            for feed in seg.feeds:
                if feed.role != "floor" or feed.site_code != site.code:
                    continue
                part = work / f"clip-{grant.id}-{seg.seq:04d}.webm"
                await self.tools.ffmpeg_run(compose.clip_part_args(feed, part))
                parts.append(part)
                first = feed.start if first is None else first
                last = max(last, feed.start + await self.tools.duration(part))
        if not parts or first is None:
            return
        name = f"m{meeting_id}/clip-{grant.id}-{site.code}.webm"
        await self._join(parts, work, self.config.path(name))
        await self._add(
            NewFile(
                meeting_id=meeting_id,
                kind="clip",
                path=name,
                content_type=WEBM,
                site_id=site.id,
                site_code=site.code,
                site_name=site.name,
                province_id=site.province_id,
                floor_id=grant.id,
                started_at=grant.granted_at,
                ended_at=until,
                timing=[
                    [datetime.fromtimestamp(first, UTC).isoformat(), 0.0, round(last - first, 3)]
                ],
                delete_after=delete_after,
            )
        )

    async def _inspection(
        self, meeting_id: int, seg: SegmentMedia, work: Path, delete_after: datetime | None
    ) -> None:
        """One recorded spot-check segment: the inspected site's feed, remuxed."""
        for feed in seg.feeds:
            if feed.role != "inspection" or feed.site_code is None:
                continue
            site = await self.sites.find(feed.site_code)
            name = f"m{meeting_id}/inspection-{seg.seq:04d}-{feed.site_code}.webm"
            part = work / f"inspection-{seg.seq:04d}-{feed.feed_id}.webm"
            await self.tools.ffmpeg_run(compose.clip_part_args(feed, part))
            part.replace(self.config.path(name))
            await self._add(
                NewFile(
                    meeting_id=meeting_id,
                    kind="inspection",
                    path=name,
                    content_type=WEBM,
                    site_id=site.id if site else None,
                    site_code=feed.site_code,
                    site_name=site.name if site else None,
                    province_id=site.province_id if site else None,
                    started_at=seg.start,
                    ended_at=seg.end,
                    delete_after=delete_after,
                )
            )
