"""The live side of recording: a meeting's program cut into segments with a constant set of feeds.

Janus 1.1.2 records a remote publisher only if it is in the room when the room's
recording is switched on (docs/recording.md), and a floor speaker reaches the
central node as a remote publisher. So whenever the feeds in central's program
room change (a grant, a revoke, the chair reconnecting), the current segment is
closed and a new one started in a fresh folder: each segment's files then cover
the same stretch of time, which makes the program's composition and each
intervention's clip a matter of picking segments. Segments are rows, so a
restarted control server resumes (the first check after a restart starts a new
segment and closes the one left open).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func, select, update

from diemcau.recording.config import RecordingConfig
from diemcau.recording.models import RecordingSegment
from diemcau.recording.ports import FeedRoles, ProgramRecorderPort
from diemcau.store import Database
from diemcau.tasks import cancel_and_wait

__all__ = ["LiveRecorder"]

log = logging.getLogger(__name__)


@dataclass
class _Live:
    """A meeting being recorded: its open segment (if any) and the feeds it holds."""

    meeting_id: int
    segment_id: int | None = None
    feeds: frozenset[int] = frozenset()
    next_seq: int = 1
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass(eq=False)
class LiveRecorder:
    """Starts, rotates and closes the Janus recording of every live program.

    Args:
        db: the store (segment rows).
        port: the media plane's recorder (``media.recording.ProgramRecorder``).
        config: where segments go.
        clock: wall clock in seconds.
        wanted: whether a meeting's policy wants this room recorded now.
        room: ``program`` (the chair and the floor) or ``inspect`` (a recorded
            spot-check); segments carry it as their ``kind``.
    """

    db: Database
    port: ProgramRecorderPort
    config: RecordingConfig
    _: KW_ONLY
    clock: Callable[[], float]
    wanted: Callable[[int], Awaitable[bool]]
    room: str = "program"
    _live: dict[int, _Live] = field(init=False, default_factory=dict)
    _task: asyncio.Task[None] | None = field(init=False, default=None)
    _wake: asyncio.Event = field(init=False, default_factory=asyncio.Event)

    @property
    def _prefix(self) -> str:
        return "seg" if self.room == "program" else self.room

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    @property
    def meetings(self) -> list[int]:
        return sorted(self._live)

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=f"recording-live-{self.room}")

    async def stop(self) -> None:
        """Stop checking; Janus keeps recording (a restart resumes, see `follow`)."""
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            # A timer rather than wait_for: no task per tick, so an idle server's
            # event loop is quiet (the demo waits for quiet before it stops).
            timer = loop.call_later(self.config.tick_s, self._wake.set)
            try:
                await self._wake.wait()
            finally:
                timer.cancel()
            self._wake.clear()
            for meeting_id in list(self._live):
                try:
                    await self.check(meeting_id)
                except Exception:
                    log.exception("recording check of meeting %s failed", meeting_id)

    def poke(self) -> None:
        """Check every live program now (a floor decision just changed its feeds)."""
        self._wake.set()

    # --- per meeting ------------------------------------------------------------------

    async def follow(self, meeting_id: int) -> None:
        """Record this live meeting's program from now on (at its start, or after a restart).

        A segment left open by an earlier run stays open until the first check
        starts a new one, so nothing Janus wrote meanwhile is lost.
        """
        if meeting_id in self._live:
            return
        async with self.db.session() as s:
            last = await s.scalar(
                select(func.max(RecordingSegment.seq)).where(
                    RecordingSegment.meeting_id == meeting_id, RecordingSegment.kind == self.room
                )
            )
            open_id = await s.scalar(
                select(RecordingSegment.id).where(
                    RecordingSegment.meeting_id == meeting_id,
                    RecordingSegment.kind == self.room,
                    RecordingSegment.ended_at.is_(None),
                )
            )
        # feeds stay empty, so the first check rotates whatever Janus is doing.
        self._live[meeting_id] = _Live(meeting_id, open_id, frozenset(), (last or 0) + 1)
        self.poke()

    async def unfollow(self, meeting_id: int, at: datetime) -> None:
        """The meeting ended: close its segment at ``at`` and forget it."""
        live = self._live.pop(meeting_id, None)
        if live is None:
            await self._close_open(meeting_id, at)
            return
        async with live.lock:
            await self._close(live, at, tell_janus=True)

    async def check(self, meeting_id: int) -> None:
        """Bring the recording of one program in line with its feeds and its policy."""
        live = self._live.get(meeting_id)
        if live is None:
            return
        async with live.lock:
            feeds = await self.port.publishers(meeting_id, self.room)
            if feeds is None:
                return  # no program on a healthy central node (yet); nothing to do
            want = frozenset(feeds) if await self.wanted(meeting_id) else frozenset()
            if live.segment_id is not None and want == live.feeds:
                return
            now = self.now()
            if not want:
                await self._close(live, now, tell_janus=True)
                return
            await self._rotate(live, feeds, want, now)

    async def _rotate(
        self, live: _Live, roles: FeedRoles, want: frozenset[int], now: datetime
    ) -> None:
        folder = f"m{live.meeting_id}/{self._prefix}-{live.next_seq:04d}"
        self.config.path(folder).mkdir(parents=True, exist_ok=True)
        if not await self.port.record(live.meeting_id, self.config.node_path(folder), self.room):
            return
        await self._close(live, now, tell_janus=False)
        async with self.db.session() as s:
            row = RecordingSegment(
                meeting_id=live.meeting_id,
                seq=live.next_seq,
                kind=self.room,
                folder=folder,
                started_at=now,
                feeds=[
                    {"feed_id": fid, "role": roles[fid][0], "site_code": roles[fid][1]}
                    for fid in sorted(want)
                ],
            )
            s.add(row)
            await s.flush()
            live.segment_id = row.id
        live.feeds = want
        live.next_seq += 1
        log.info("meeting %s: recording %s (%d feeds)", live.meeting_id, folder, len(want))

    async def _close(self, live: _Live, at: datetime, *, tell_janus: bool) -> None:
        if tell_janus:
            await self.port.stop(live.meeting_id, self.room)
        if live.segment_id is not None:
            async with self.db.session() as s:
                await s.execute(
                    update(RecordingSegment)
                    .where(RecordingSegment.id == live.segment_id)
                    .values(ended_at=at)
                )
        live.segment_id = None
        live.feeds = frozenset()

    async def _close_open(self, meeting_id: int, at: datetime) -> None:
        async with self.db.session() as s:
            await s.execute(
                update(RecordingSegment)
                .where(
                    RecordingSegment.meeting_id == meeting_id,
                    RecordingSegment.kind == self.room,
                    RecordingSegment.ended_at.is_(None),
                )
                .values(ended_at=at)
            )
