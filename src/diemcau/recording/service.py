"""The recording service: the one object the API and the composition root talk to.

It follows meetings' program changes (start, floor decisions, end) to drive the
live Janus recording, queues finished meetings for post-processing, and answers
for a meeting's policy, files, timeline and minutes with the access rules of
`access`. Every file served is first checked against its SHA-256: a file that
no longer matches is reported (an error to the caller, a critical alert, an audit
record) and never served.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from diemcau.actors import Actor
from diemcau.directory.sites import SiteDirectory
from diemcau.errors import DomainError, Forbidden, NotFound
from diemcau.recording import access
from diemcau.recording.auditing import audit, audit_facts
from diemcau.recording.config import RecordingConfig
from diemcau.recording.files import FileStore, FileView
from diemcau.recording.integrity import IntegrityError, Verifier
from diemcau.recording.minutes import MinutesContent, minutes_content
from diemcau.recording.policy import Policies, Policy, PolicyChange
from diemcau.recording.ports import (
    AlertSink,
    ConclusionPublisher,
    DirectiveSource,
    MeetingHistory,
    MeetingRecord,
    ProgramChange,
    ProgramRecorderPort,
)
from diemcau.recording.processor import PostProcessor
from diemcau.recording.publication import MinutesBook, MinutesState
from diemcau.recording.retention import DiskUsage, DiskWatch, Retention
from diemcau.recording.segments import LiveRecorder
from diemcau.recording.timeline import AUDITED, MeetingFacts, Timeline, build_timeline
from diemcau.recording.tools import Tools
from diemcau.security import TokenError, sign_token, verify_token
from diemcau.store import Database
from diemcau.tasks import cancel_and_wait

__all__ = ["RecordingService", "Tampered"]

log = logging.getLogger(__name__)

INTEGRITY_ALERT = "recording_integrity"
# A watch ticket outlives the file's own length by this much (pauses, seeking back).
TICKET_MARGIN_S = 900
TICKET_MAX_S = 12 * 3600
# The published minutes' link in the conclusion every site receives.
MINUTES_LINK_S = 400 * 86400


class Tampered(DomainError):
    """A stored file no longer matches the digest taken when it was finished."""

    status = 409
    code = "tampered"


@dataclass(frozen=True)
class Served:
    """A file cleared for serving: where it is and what it is."""

    path: Path
    file: FileView


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
        self.directives = directives
        self.alerts = alerts
        self.clock = clock
        self.housekeeping_s = housekeeping_s
        # Never the session-token key itself: a ticket must not pass for a login.
        self._ticket_key = hmac.new(key, b"diemcau recording watch ticket", hashlib.sha256).digest()
        self.policies = Policies(db)
        self.files = FileStore(db, config)
        self.verifier = Verifier()
        self.recorder = recorder
        self.live = (
            LiveRecorder(db, recorder, config, clock=clock, wanted=self._wanted)
            if recorder is not None
            else None
        )
        self.inspections = (
            LiveRecorder(
                db, recorder, config, clock=clock, wanted=self._wanted_inspection, room="inspect"
            )
            if recorder is not None
            else None
        )
        self._inspection_timers: dict[int, asyncio.Task[None]] = {}
        self.processor = PostProcessor(
            db, config, self.files, self.policies, history, sites, tools=tools, clock=clock
        )
        self.minutes_book = MinutesBook(
            db, config, self.files, publish_conclusion, link=self._minutes_link
        )
        self.retention = Retention(db, config, self.files)
        self.disk = DiskWatch(config, self.files, alerts)
        self._record_program: dict[int, bool] = {}
        self._record_inspections: dict[int, bool] = {}
        self._task: asyncio.Task[None] | None = None

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    # --- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Resume: follow live meetings still recording, queue unfinished processing."""
        for meeting_id in await self.policies.in_states(("recording",)):
            meeting = await self.history.meeting(meeting_id)
            if meeting is not None and meeting.state == "live" and self.live is not None:
                await self.live.follow(meeting_id)
                if self.inspections is not None:
                    await self.inspections.follow(meeting_id)
            else:
                ended = (meeting.ended_at if meeting else None) or self.now()
                await self._finish(meeting_id, ended)
        for meeting_id in await self.policies.in_states(("processing",)):
            self.processor.enqueue(meeting_id)
        for recorder in (self.live, self.inspections):
            if recorder is not None:
                recorder.start()
        self.processor.start()
        if self._task is None and self.housekeeping_s > 0:
            self._task = asyncio.create_task(self._housekeeping(), name="recording-housekeeping")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        for timer in list(self._inspection_timers.values()):
            await cancel_and_wait(timer)
        self._inspection_timers.clear()
        for recorder in (self.live, self.inspections):
            if recorder is not None:
                await recorder.stop()
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

    async def end_inspection(self, meeting_id: int) -> None:
        """Stop recording the meeting's spot-check now (tests; the timer does it otherwise)."""
        await cancel_and_wait(self._inspection_timers.pop(meeting_id, None))
        if self.recorder is not None:
            await self.recorder.inspect(meeting_id, None)
        if self.inspections is not None:
            self.inspections.poke()

    # --- following meetings -----------------------------------------------------------

    async def _wanted(self, meeting_id: int) -> bool:
        if meeting_id not in self._record_program:
            self._record_program[meeting_id] = (await self.policies.get(meeting_id)).record_program
        return self._record_program[meeting_id]

    async def _wanted_inspection(self, meeting_id: int) -> bool:
        if meeting_id not in self._record_inspections:
            policy = await self.policies.get(meeting_id)
            self._record_inspections[meeting_id] = policy.record_inspections
        return self._record_inspections[meeting_id]

    async def on_program_change(self, change: ProgramChange) -> None:
        """A meetings floor listener: start, every floor decision, and end."""
        if self.live is None or self.inspections is None:
            return
        if change.action == "start":
            await self.policies.set_state(change.meeting_id, "recording")
            await self.live.follow(change.meeting_id)
            await self.inspections.follow(change.meeting_id)
        elif change.action == "end":
            await self._finish(change.meeting_id, change.at)
        else:
            self.live.poke()

    async def _finish(self, meeting_id: int, at: datetime) -> None:
        timer = self._inspection_timers.pop(meeting_id, None)
        await cancel_and_wait(timer)
        for recorder in (self.live, self.inspections):
            if recorder is not None:
                await recorder.unfollow(meeting_id, at)
        self._record_program.pop(meeting_id, None)
        self._record_inspections.pop(meeting_id, None)
        await self.policies.set_state(meeting_id, "processing")
        self.processor.enqueue(meeting_id)

    async def wait_processed(self, timeout: float = 120.0) -> None:
        """Wait until the post-processing queue is empty (tests, bench)."""
        await asyncio.wait_for(self.processor.idle.wait(), timeout)

    # --- meetings and access ----------------------------------------------------------

    async def _meeting(self, meeting_id: int) -> MeetingRecord:
        meeting = await self.history.meeting(meeting_id)
        if meeting is None:
            raise NotFound(f"meeting {meeting_id} not found", code="no_meeting")
        return meeting

    async def policy(self, actor: Actor, meeting_id: int) -> Policy:
        access.require_viewer(actor, await self._meeting(meeting_id))
        return await self.policies.get(meeting_id)

    async def set_policy(self, actor: Actor, meeting_id: int, change: PolicyChange) -> Policy:
        """Change a meeting's policy (a live program starts or stops recording at once)."""
        meeting = await self._meeting(meeting_id)
        access.require_manage(actor, meeting, "change the recording policy")
        _, after = await self.policies.change(actor, meeting_id, change, self.now())
        self._record_program[meeting_id] = after.record_program
        self._record_inspections[meeting_id] = after.record_inspections
        if not after.record_inspections and self.recorder is not None:
            await self.recorder.inspect(meeting_id, None)
        for recorder in (self.live, self.inspections):
            if recorder is not None:
                recorder.poke()
        return after

    async def on_spot_check(self, actor: Actor, site_code: str) -> bool:
        """A spot-check was granted: record it at central if its meeting's policy says so.

        The spot-check is audited (``inspection.start``) when the site is in a live
        meeting, so the meeting's timeline shows it, recorded or not. Returns whether
        it is recorded. A recorded spot-check lasts until the next one of the same
        meeting, the meeting's end, or `RecordingConfig.inspection_s`.
        """
        site = await self.sites.find(site_code)
        meeting_id = await self.history.live_meeting_of(site.id) if site else None
        if site is None or meeting_id is None:
            return False
        recorded = (
            self.recorder is not None
            and self.inspections is not None
            and await self._wanted_inspection(meeting_id)
            and await self.recorder.inspect(meeting_id, site_code)
        )
        async with self.db.session() as s:
            await audit(
                s,
                actor,
                "inspection.start",
                meeting_id,
                target=site_code,
                details={"recorded": recorded},
                at=self.now(),
            )
        if recorded:
            assert self.inspections is not None
            await cancel_and_wait(self._inspection_timers.pop(meeting_id, None))
            self._inspection_timers[meeting_id] = asyncio.create_task(
                self._end_inspection(meeting_id), name=f"recording-inspection-{meeting_id}"
            )
            self.inspections.poke()
        return recorded

    async def _end_inspection(self, meeting_id: int) -> None:
        await asyncio.sleep(self.config.inspection_s)
        self._inspection_timers.pop(meeting_id, None)
        if self.recorder is not None:
            await self.recorder.inspect(meeting_id, None)
        if self.inspections is not None:
            self.inspections.poke()

    async def manages(self, actor: Actor, meeting_id: int) -> bool:
        """Whether ``actor`` manages this meeting's recording (pages show the editing tools)."""
        return access.may_manage(actor, await self._meeting(meeting_id))

    async def _published(self, meeting_id: int) -> bool:
        return (await self.minutes_book.get(meeting_id)).published

    async def list_files(self, actor: Actor, meeting_id: int) -> list[FileView]:
        meeting = await self._meeting(meeting_id)
        access.require_viewer(actor, meeting)
        published = await self._published(meeting_id)
        return [
            f
            for f in await self.files.of_meeting(meeting_id)
            if access.may_watch(actor, meeting, f, published=published)
        ]

    async def _checked(self, file: FileView) -> Served:
        path = self.config.path(file.path)
        try:
            await self.verifier.verify(path, file.sha256)
        except IntegrityError as exc:
            await self._report_tampered(file, exc.reason)
            raise Tampered(
                f"file {file.id} ({file.name}) failed its integrity check: {exc.reason}; "
                "it is not served and the incident is recorded"
            ) from exc
        return Served(path, file)

    async def _report_tampered(self, file: FileView, reason: str) -> None:
        async with self.db.session() as s:
            await audit(
                s,
                Actor.system("integrity"),
                "recording.tampered",
                file.meeting_id,
                target=file.name,
                details={"file_id": file.id, "sha256": file.sha256, "reason": reason},
                at=self.now(),
            )
        if self.alerts is not None:
            with contextlib.suppress(Exception):
                await self.alerts.raise_alert(
                    INTEGRITY_ALERT,
                    str(file.id),
                    message_vi=f"Tệp ghi hình {file.name} đã bị thay đổi hoặc mất: {reason}",
                    message_en=f"Recording file {file.name} was altered or is missing: {reason}",
                    severity="critical",
                    details={"file_id": file.id, "meeting_id": file.meeting_id},
                )

    async def _file(self, file_id: int) -> FileView:
        file = await self.files.get(file_id)
        if file is None or file.deleted_at is not None:
            raise NotFound(f"recording file {file_id} not found", code="no_file")
        return file

    async def open_file(self, actor: Actor, file_id: int) -> Served:
        """A file a staff member may fetch, checked against its digest."""
        file = await self._file(file_id)
        meeting = await self._meeting(file.meeting_id)
        published = await self._published(file.meeting_id)
        if actor.is_site or not access.may_watch(actor, meeting, file, published=published):
            raise Forbidden(f"you may not fetch recording file {file_id}", code="not_allowed")
        return await self._checked(file)

    async def watch_ticket(self, actor: Actor, file_id: int) -> tuple[str, int]:
        """A signed, file-bound ticket for a ``<video>`` element, which cannot send a token.

        Issued after the same checks as `open_file`; valid for the file's length plus a
        margin (at most 12 h). Returns (ticket, expiry as epoch seconds).
        """
        served = await self.open_file(actor, file_id)
        ttl = min(TICKET_MAX_S, int(served.file.duration_s or 0) + TICKET_MARGIN_S)
        now = self.clock()
        ticket = sign_token(
            self._ticket_key, f"file:{file_id}", "watch", ttl, now=now, by=actor.label
        )
        return ticket, int(now) + ttl

    def _minutes_link(self, file: FileView) -> str:
        """The minutes PDF's link in the conclusion the sites receive (site terminals open
        attachments as plain links, without their token); bound to that file only."""
        ticket = sign_token(
            self._ticket_key,
            f"file:{file.id}",
            "watch",
            MINUTES_LINK_S,
            now=self.clock(),
            by="minutes",
        )
        return f"/api/recordings/{file.id}/watch?ticket={ticket}"

    async def open_with_ticket(self, file_id: int, ticket: str) -> Served:
        """The file a watch ticket names, checked against its digest."""
        try:
            claims = verify_token(self._ticket_key, ticket, now=self.clock())
        except TokenError as exc:
            raise Forbidden(f"invalid watch ticket: {exc}", code="bad_ticket") from exc
        if claims.sub != f"file:{file_id}" or claims.role != "watch":
            raise Forbidden("this ticket is for another file", code="bad_ticket")
        return await self._checked(await self._file(file_id))

    async def delete_file(self, actor: Actor, file_id: int, reason: str) -> FileView:
        access.require_admin(actor, "delete a recording before its retention ends")
        return await self.retention.delete(actor, await self._file(file_id), reason, self.now())

    async def storage(self, actor: Actor) -> DiskUsage:
        if not (actor.has_role("admin", "chair", "operator") or actor.kind == "system"):
            raise Forbidden("disk usage is for admins, chairs and operators", code="role")
        return await self.disk.usage(self._live_folders())

    # --- timeline and minutes ---------------------------------------------------------

    async def facts(self, meeting: MeetingRecord) -> MeetingFacts:
        h, mid = self.history, meeting.id
        directives = []
        if self.directives is not None and meeting.started_at is not None:
            until = meeting.ended_at or self.now()
            directives = list(await self.directives(meeting.started_at, until))
        return MeetingFacts(
            meeting=meeting,
            participants=await h.participants(mid),
            attendance=await h.attendance(mid),
            floor=await h.floor(mid),
            hands=await h.hands(mid),
            conclusions=await h.conclusions(mid),
            directives=directives,
            audit=await audit_facts(self.db, mid, AUDITED),
            files=await self.files.of_meeting(mid),
        )

    async def timeline(
        self,
        actor: Actor,
        meeting_id: int,
        *,
        kinds: Collection[str] | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> Timeline:
        meeting = await self._meeting(meeting_id)
        access.require_viewer(actor, meeting)
        facts = await self.facts(meeting)
        if not access.may_manage(actor, meeting):
            published = await self._published(meeting_id)
            visible = [
                f for f in facts.files if access.may_watch(actor, meeting, f, published=published)
            ]
            facts = replace(facts, files=visible)
        return await build_timeline(
            facts, self.sites, actor, kinds=kinds, limit=min(max(1, limit), 5000), offset=offset
        )

    async def _content(self, meeting: MeetingRecord, texts: Mapping[str, str]) -> MinutesContent:
        facts = await self.facts(meeting)
        ids = {*facts.participants, *(g.site_id for g in facts.floor)}
        return minutes_content(facts, await self.sites.by_ids(ids), dict(texts))

    async def minutes(self, actor: Actor, meeting_id: int) -> dict[str, Any]:
        """The minutes' state and content (the frozen content once published)."""
        meeting = await self._meeting(meeting_id)
        state = await self.minutes_book.get(meeting_id)
        if not access.may_read_minutes(actor, meeting, state.published) or actor.is_site:
            raise Forbidden("the minutes are not available to you (yet)", code="not_allowed")
        content = (
            MinutesContent.from_json(state.snapshot)
            if state.published and state.snapshot
            else await self._content(meeting, state.texts)
        )
        out = {**state.as_dict(), "content": content.as_json(), "read_receipts": None}
        if state.conclusion_id is not None:
            invited = len(await self.history.participants(meeting_id))
            acked = next(
                (
                    len(c.acks)
                    for c in await self.history.conclusions(meeting_id)
                    if c.id == state.conclusion_id
                ),
                0,
            )
            out["read_receipts"] = {"read": acked, "invited": invited}
        return out

    async def edit_minutes(
        self, actor: Actor, meeting_id: int, texts: Mapping[str, object], version: int
    ) -> MinutesState:
        meeting = await self._meeting(meeting_id)
        access.require_manage(actor, meeting, "edit the minutes")
        return await self.minutes_book.edit(actor, meeting_id, texts, version, self.now())

    async def publish_minutes(self, actor: Actor, meeting_id: int) -> MinutesState:
        meeting = await self._meeting(meeting_id)
        access.require_manage(actor, meeting, "publish the minutes")
        state = await self.minutes_book.get(meeting_id)
        content = await self._content(meeting, state.texts)
        return await self.minutes_book.publish(actor, content, meeting.state == "ended", self.now())

    async def draft_document(self, actor: Actor, meeting_id: int) -> MinutesContent:
        """The current draft's content, for a preview rendered on request (managers)."""
        meeting = await self._meeting(meeting_id)
        access.require_manage(actor, meeting, "preview the minutes")
        state = await self.minutes_book.get(meeting_id)
        if state.published and state.snapshot:
            return MinutesContent.from_json(state.snapshot)
        return await self._content(meeting, state.texts)

    async def published_minutes(self, actor: Actor, meeting_id: int, fmt: str) -> Served:
        """The published minutes file (``pdf`` or ``html``), checked against its digest.

        Sites get them only for a meeting they took part in; staff by `access`.
        """
        meeting = await self._meeting(meeting_id)
        state = await self.minutes_book.get(meeting_id)
        if not state.published:
            raise NotFound(
                f"the minutes of meeting {meeting_id} are not published", code="no_minutes"
            )
        if actor.is_site:
            if actor.site_id not in set(await self.history.participants(meeting_id)):
                raise Forbidden(
                    f"site {actor.name} was not in meeting {meeting_id}", code="not_invited"
                )
        elif not access.may_read_minutes(actor, meeting, True):
            raise Forbidden("the minutes are not available to you", code="not_allowed")
        file_id = state.pdf_file_id if fmt == "pdf" else state.html_file_id
        if file_id is None:
            raise NotFound("no such minutes file", code="no_file")
        return await self._checked(await self._file(file_id))
