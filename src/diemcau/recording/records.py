"""A meeting's record as people read it: its timeline and its minutes, with who may see them.

Both are built from the meeting's own records (meetings' history, the command
center's directives, the audit log, the recording's files), so they can never
disagree with them; the access rules are `access`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import KW_ONLY, dataclass, replace
from datetime import UTC, datetime

from diemcau.actors import Actor
from diemcau.directory.sites import SiteDirectory
from diemcau.errors import Forbidden, NotFound
from diemcau.recording import access
from diemcau.recording.auditing import audit_facts
from diemcau.recording.files import FileStore
from diemcau.recording.minutes import MinutesContent, minutes_content
from diemcau.recording.ports import DirectiveSource, MeetingHistory, MeetingRecord
from diemcau.recording.publication import MinutesBook, MinutesState
from diemcau.recording.serving import FileDesk, Served
from diemcau.recording.timeline import AUDITED, MeetingFacts, Timeline, build_timeline
from diemcau.records import JsonObject
from diemcau.store import Database

__all__ = ["MeetingRecords"]


@dataclass(eq=False)
class MeetingRecords:
    """Timelines and minutes of every meeting."""

    db: Database
    history: MeetingHistory
    sites: SiteDirectory
    files: FileStore
    desk: FileDesk
    minutes_book: MinutesBook
    _: KW_ONLY
    directives: DirectiveSource | None
    clock: Callable[[], float]

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    async def meeting(self, meeting_id: int) -> MeetingRecord:
        found = await self.history.meeting(meeting_id)
        if found is None:
            raise NotFound(f"meeting {meeting_id} not found", code="no_meeting")
        return found

    async def published(self, meeting_id: int) -> bool:
        return (await self.minutes_book.get(meeting_id)).published

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
        meeting = await self.meeting(meeting_id)
        access.require_viewer(actor, meeting)
        facts = await self.facts(meeting)
        if not access.may_manage(actor, meeting):
            published = await self.published(meeting_id)
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

    async def minutes(self, actor: Actor, meeting_id: int) -> JsonObject:
        """The minutes' state and content (the frozen content once published)."""
        meeting = await self.meeting(meeting_id)
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
        meeting = await self.meeting(meeting_id)
        access.require_manage(actor, meeting, "edit the minutes")
        return await self.minutes_book.edit(actor, meeting_id, texts, version, self.now())

    async def publish_minutes(self, actor: Actor, meeting_id: int) -> MinutesState:
        meeting = await self.meeting(meeting_id)
        access.require_manage(actor, meeting, "publish the minutes")
        state = await self.minutes_book.get(meeting_id)
        content = await self._content(meeting, state.texts)
        return await self.minutes_book.publish(actor, content, meeting.state == "ended", self.now())

    async def draft_document(self, actor: Actor, meeting_id: int) -> MinutesContent:
        """The current draft's content, for a preview rendered on request (managers)."""
        meeting = await self.meeting(meeting_id)
        access.require_manage(actor, meeting, "preview the minutes")
        state = await self.minutes_book.get(meeting_id)
        if state.published and state.snapshot:
            return MinutesContent.from_json(state.snapshot)
        return await self._content(meeting, state.texts)

    async def published_minutes(self, actor: Actor, meeting_id: int, fmt: str) -> Served:
        """The published minutes file (``pdf`` or ``html``), checked against its digest.

        Sites get them only for a meeting they took part in; staff by `access`.
        """
        meeting = await self.meeting(meeting_id)
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
        return await self.desk.checked(await self.desk.get(file_id))
