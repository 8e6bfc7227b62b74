"""The recording service: the one object the API and the composition root talk to.

It follows meetings' program changes (start, floor decisions, end) to drive the
live Janus recording, queues finished meetings for post-processing, keeps the
policy, and hands out files (checked against their SHA-256 by `serving`) with
the access rules of `access`; spot-checks are `inspections`', timelines and
minutes `records`'.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from diemcau.actors import Actor
from diemcau.directory.sites import SiteDirectory
from diemcau.errors import Forbidden
from diemcau.recording import access
from diemcau.recording.config import RecordingConfig
from diemcau.recording.files import FileStore, FileView
from diemcau.recording.inspections import Inspections
from diemcau.recording.policy import Policies, Policy, PolicyChange
from diemcau.recording.ports import (
    AlertSink,
    ConclusionPublisher,
    DirectiveSource,
    MeetingHistory,
    ProgramChange,
    ProgramRecorderPort,
)
from diemcau.recording.processor import PostProcessor
from diemcau.recording.publication import MinutesBook
from diemcau.recording.records import MeetingRecords
from diemcau.recording.retention import DiskUsage, DiskWatch, Retention
from diemcau.recording.segments import LiveRecorder
from diemcau.recording.serving import FileDesk, Served, Tampered
from diemcau.recording.tools import Tools
from diemcau.store import Database
from diemcau.tasks import cancel_and_wait

__all__ = ["RecordingService", "Served", "Tampered"]

log = logging.getLogger(__name__)


class RecordingService:
    """Recording, timeline and minutes of every meeting of one control server.

    Args:
        db: the store.
        config: folders, retention, disk thresholds.
        sites: the site directory (names and provinces).
        history: the meetings' past (meetings' ``MeetingHistory``).
        recorder: the media plane's program recorder; None without media.
        publish_conclusion: sends the published minutes to the sites as a conclusion.
        directives: the directives issued in a time span (the command center).
        alerts: raises the disk and integrity alerts (the command center).
        clock: wall clock in seconds.
        key: the instance key; watch tickets are signed with a key derived from it.
        housekeeping_s: how often retention and the disk are checked.
    """

    def __init__(
        self,
        db: Database,
        config: RecordingConfig,
        *,
        sites: SiteDirectory,
        history: MeetingHistory,
        recorder: ProgramRecorderPort | None = None,
        publish_conclusion: ConclusionPublisher | None = None,
        directives: DirectiveSource | None = None,
        alerts: AlertSink | None = None,
        clock: Callable[[], float] = time.time,
        tools: Tools | None = None,
        key: bytes = b"",
        housekeeping_s: float = 30.0,
    ) -> None:
        self.db = db
        self.config = config
        self.sites = sites
        self.history = history
        self.clock = clock
        self.housekeeping_s = housekeeping_s
        self.policies = Policies(db)
        self.files = FileStore(db, config)
        self.desk = FileDesk(db, config, self.files, alerts, key=key, clock=clock)
        self.live = (
            LiveRecorder(db, recorder, config, clock=clock, wanted=self._wanted)
            if recorder is not None
            else None
        )
        self.inspections = (
            Inspections(db, config, recorder, self.policies, sites, history, clock=clock)
            if recorder is not None
            else None
        )
        self.processor = PostProcessor(
            db, config, self.files, self.policies, history, sites, tools=tools, clock=clock
        )
        self.minutes_book = MinutesBook(
            db, config, self.files, publish_conclusion, link=self.desk.minutes_link
        )
        self.records = MeetingRecords(
            db,
            history,
            sites,
            self.files,
            self.desk,
            self.minutes_book,
            directives=directives,
            clock=clock,
        )
        self.retention = Retention(db, config, self.files)
        self.disk = DiskWatch(config, self.files, alerts)
        self._record_program: dict[int, bool] = {}
        self._task: asyncio.Task[None] | None = None

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    # --- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Resume: follow live meetings still recording, queue unfinished processing."""
        for meeting_id in await self.policies.in_states(("recording",)):
            meeting = await self.history.meeting(meeting_id)
            if meeting is not None and meeting.state == "live" and self.live is not None:
                await self._follow(meeting_id)
            else:
                ended = (meeting.ended_at if meeting else None) or self.now()
                await self._finish(meeting_id, ended)
        for meeting_id in await self.policies.in_states(("processing",)):
            self.processor.enqueue(meeting_id)
        if self.live is not None:
            self.live.start()
        if self.inspections is not None:
            self.inspections.start()
        self.processor.start()
        if self._task is None and self.housekeeping_s > 0:
            self._task = asyncio.create_task(self._housekeeping(), name="recording-housekeeping")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        if self.inspections is not None:
            await self.inspections.stop()
        if self.live is not None:
            await self.live.stop()
        await self.processor.stop()

    async def _housekeeping(self) -> None:
        while True:
            try:
                await self.retention.sweep(self.now())
                await self.disk.check(self._live_folders())
            except Exception:
                log.exception("recording housekeeping failed")
            await asyncio.sleep(self.housekeeping_s)

    def _live_folders(self) -> list[str]:
        return [f"m{mid}" for mid in (self.live.meetings if self.live else [])]

    # --- following meetings -----------------------------------------------------------

    async def _wanted(self, meeting_id: int) -> bool:
        if meeting_id not in self._record_program:
            self._record_program[meeting_id] = (await self.policies.get(meeting_id)).record_program
        return self._record_program[meeting_id]

    async def _follow(self, meeting_id: int) -> None:
        if self.live is not None:
            await self.live.follow(meeting_id)
        if self.inspections is not None:
            await self.inspections.follow(meeting_id)

    async def on_program_change(self, change: ProgramChange) -> None:
        """A meetings floor listener: start, every floor decision, and end."""
        if self.live is None:
            return
        if change.action == "start":
            await self.policies.set_state(change.meeting_id, "recording")
            await self._follow(change.meeting_id)
        elif change.action == "end":
            await self._finish(change.meeting_id, change.at)
        else:
            self.live.poke()

    async def _finish(self, meeting_id: int, at: datetime) -> None:
        if self.inspections is not None:
            await self.inspections.finish(meeting_id, at)
        if self.live is not None:
            await self.live.unfollow(meeting_id, at)
        self._record_program.pop(meeting_id, None)
        await self.policies.set_state(meeting_id, "processing")
        self.processor.enqueue(meeting_id)

    async def on_spot_check(self, actor: Actor, site_code: str, *, audited: bool = True) -> bool:
        """A spot-check was granted: audited, and recorded if its meeting's policy says so.

        ``audited=False``: the caller wrote its own audit row (an online inspection).
        """
        if self.inspections is None:
            return False
        return await self.inspections.spot_check(actor, site_code, audited=audited)

    async def end_spot_check(self, meeting_id: int) -> None:
        """The recorded spot-check of a meeting ended (the inspection was ended)."""
        if self.inspections is not None:
            await self.inspections.end(meeting_id)

    async def wait_processed(self, timeout: float = 120.0) -> None:
        """Wait until the post-processing queue is empty (tests, bench)."""
        await asyncio.wait_for(self.processor.idle.wait(), timeout)

    # --- policy and files -------------------------------------------------------------

    async def policy(self, actor: Actor, meeting_id: int) -> Policy:
        access.require_viewer(actor, await self.records.meeting(meeting_id))
        return await self.policies.get(meeting_id)

    async def set_policy(self, actor: Actor, meeting_id: int, change: PolicyChange) -> Policy:
        """Change a meeting's policy (a live program starts or stops recording at once)."""
        meeting = await self.records.meeting(meeting_id)
        access.require_manage(actor, meeting, "change the recording policy")
        _, after = await self.policies.change(actor, meeting_id, change, self.now())
        self._record_program[meeting_id] = after.record_program
        if self.inspections is not None:
            await self.inspections.policy_changed(meeting_id, after.record_inspections)
        if self.live is not None:
            self.live.poke()
        return after

    async def manages(self, actor: Actor, meeting_id: int) -> bool:
        """Whether ``actor`` manages this meeting's recording (pages show the editing tools)."""
        return access.may_manage(actor, await self.records.meeting(meeting_id))

    async def list_files(self, actor: Actor, meeting_id: int) -> list[FileView]:
        meeting = await self.records.meeting(meeting_id)
        access.require_viewer(actor, meeting)
        published = await self.records.published(meeting_id)
        return [
            f
            for f in await self.files.of_meeting(meeting_id)
            if access.may_watch(actor, meeting, f, published=published)
        ]

    async def open_file(self, actor: Actor, file_id: int) -> Served:
        """A file a staff member may fetch, checked against its digest."""
        file = await self.desk.get(file_id)
        meeting = await self.records.meeting(file.meeting_id)
        published = await self.records.published(file.meeting_id)
        if actor.is_site or not access.may_watch(actor, meeting, file, published=published):
            raise Forbidden(f"you may not fetch recording file {file_id}", code="not_allowed")
        return await self.desk.checked(file)

    async def watch_ticket(self, actor: Actor, file_id: int) -> tuple[str, int]:
        """A signed, file-bound ticket for a ``<video>`` element (which cannot send a
        token), after the same checks as `open_file`. Returns (ticket, expiry)."""
        served = await self.open_file(actor, file_id)
        return self.desk.watch_ticket(served.file, actor.label)

    async def open_with_ticket(self, file_id: int, ticket: str) -> Served:
        return await self.desk.open_with_ticket(file_id, ticket)

    async def delete_file(self, actor: Actor, file_id: int, reason: str) -> FileView:
        access.require_admin(actor, "delete a recording before its retention ends")
        return await self.retention.delete(actor, await self.desk.get(file_id), reason, self.now())

    async def storage(self, actor: Actor) -> DiskUsage:
        if not (actor.has_role("admin", "chair", "operator") or actor.kind == "system"):
            raise Forbidden("disk usage is for admins, chairs and operators", code="role")
        return await self.disk.usage(self._live_folders())
