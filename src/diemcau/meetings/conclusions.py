"""Conclusions: the chair publishes text (and attachment metadata); each site acknowledges.

Delivery is durable: on a live meeting one broadcast on the meeting stream (encoded
once), after the meeting a per-site message with a stable id, so a site that was away
receives it when its session resumes. Acknowledgements are idempotent per site.
"""

from __future__ import annotations

import asyncio
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NotRequired, TypedDict

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from diemcau.actors import Actor
from diemcau.audit import record_audit
from diemcau.directory.sites import SiteDirectory
from diemcau.errors import Conflict, Forbidden, Invalid, NotFound
from diemcau.meetings.access import require_site
from diemcau.meetings.models import (
    MeetingConclusion,
    MeetingConclusionAck,
    MeetingParticipant,
)
from diemcau.meetings.ports import Hub
from diemcau.meetings.publisher import Publisher
from diemcau.meetings.store import MeetingStore
from diemcau.records import JsonObject, Record, iso

__all__ = ["Attachment", "ConclusionStatus", "ConclusionView", "Conclusions"]

MAX_BODY = 50000
MAX_ATTACHMENTS = 20


class Attachment(BaseModel):
    """Metadata of an attached file (the file itself is served elsewhere, e.g. a URL)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    url: str = Field(default="", max_length=1000)
    size: int = Field(default=0, ge=0)
    content_type: str = Field(default="", max_length=100)
    sha256: str = Field(default="", max_length=64)


@dataclass(frozen=True)
class ConclusionView(Record):
    id: int
    meeting_id: int
    body: str
    attachments: list[JsonObject]
    published_at: datetime


class SiteAck(TypedDict):
    """One invited site in a conclusion's status (``acked_at`` once it acknowledged)."""

    site_id: int
    code: str
    name: str
    province_name: str
    acked_at: NotRequired[str]


@dataclass(frozen=True)
class ConclusionStatus:
    """Who has and has not acknowledged a conclusion."""

    conclusion: ConclusionView
    acknowledged: list[SiteAck]
    pending: list[SiteAck]

    def as_dict(self) -> JsonObject:
        return {
            "conclusion": self.conclusion.as_dict(),
            "acknowledged_count": len(self.acknowledged),
            "pending_count": len(self.pending),
            "acknowledged": self.acknowledged,
            "pending": self.pending,
        }


def _view(row: MeetingConclusion) -> ConclusionView:
    return ConclusionView(
        row.id, row.meeting_id, row.body, list(row.attachments or []), row.published_at
    )


@dataclass(eq=False, repr=False)
class Conclusions:
    """Conclusions of every meeting and their acknowledgements.

    Args:
        store: the meetings' shared read side (locks, clock, participants).
        hub: the presence hub (durable per-site delivery after a meeting).
        publisher: announces a publication on a live meeting and to staff.
        sites: the directory's read model (codes and names in the status).
    """

    store: MeetingStore
    hub: Hub
    publisher: Publisher
    sites: SiteDirectory
    # Meetings known to have no conclusion yet: a joining site needs no query then
    # (thousands of sites join at the start, before anything is concluded).
    _none: set[int] = field(init=False, default_factory=set)
    # Publications seen per meeting (race guard).
    _published: dict[int, int] = field(init=False, default_factory=dict)
    # "Has it any conclusion?": one store read shared by a crowd of joining sites.
    _counting: dict[int, asyncio.Future[bool]] = field(init=False, default_factory=dict)

    async def publish(
        self,
        actor: Actor,
        meeting_id: int,
        body: str,
        attachments: Sequence[Attachment] = (),
    ) -> ConclusionView:
        """Publish a conclusion to every participant of a live or ended meeting."""
        text = unicodedata.normalize("NFC", body).strip()
        if not text:
            raise Invalid("a conclusion needs text")
        if len(text) > MAX_BODY:
            raise Invalid(f"a conclusion is at most {MAX_BODY} characters")
        if len(attachments) > MAX_ATTACHMENTS:
            raise Invalid(f"at most {MAX_ATTACHMENTS} attachments")
        now = self.store.now()
        async with self.store.lock(meeting_id):
            async with self.store.db.session() as s:
                m = await self.store.load_to_run(s, actor, meeting_id, "publish conclusions")
                if m.state == "scheduled":
                    raise Conflict("conclusions are published once the meeting has started")
                row = MeetingConclusion(
                    meeting_id=meeting_id,
                    body=text,
                    attachments=[a.model_dump() for a in attachments],
                    published_at=now,
                    published_by_user_id=actor.user_id,
                )
                s.add(row)
                await s.flush()
                await record_audit(
                    s,
                    actor,
                    "conclusion.publish",
                    meeting_id,
                    target=str(row.id),
                    details={"chars": len(text), "attachments": len(attachments)},
                    at=now,
                )
                state = m.state
                view = _view(row)
            self._none.discard(meeting_id)
            self._published[meeting_id] = self._published.get(meeting_id, 0) + 1
            payload = {"conclusion": view.as_dict()}
            if state == "live":
                await self.publisher.broadcast(meeting_id, "conclusion.published", payload)
            else:
                sites = await self.store.participant_ids(meeting_id)
                await self.hub.send(
                    sites, "conclusion.published", payload, msg_id=f"conclusion:{view.id}"
                )
                await self.publisher.staff_event("conclusion.published", payload)
        return view

    async def list_for_meeting(self, meeting_id: int) -> list[ConclusionView]:
        async with self.store.db.session() as s:
            await self.store.load(s, meeting_id)
            rows = await s.scalars(
                select(MeetingConclusion)
                .where(MeetingConclusion.meeting_id == meeting_id)
                .order_by(MeetingConclusion.id)
            )
            return [_view(r) for r in rows.all()]

    async def for_site(self, meeting_id: int, site_id: int) -> list[JsonObject]:
        """Conclusions of a meeting with this site's acknowledgement state."""
        if meeting_id in self._none or not await self._any(meeting_id):
            return []
        seen = self._published.get(meeting_id, 0)
        async with self.store.db.session() as s:
            rows = (
                await s.execute(
                    select(MeetingConclusion, MeetingConclusionAck.acked_at)
                    .outerjoin(
                        MeetingConclusionAck,
                        (MeetingConclusionAck.conclusion_id == MeetingConclusion.id)
                        & (MeetingConclusionAck.site_id == site_id),
                    )
                    .where(MeetingConclusion.meeting_id == meeting_id)
                    .order_by(MeetingConclusion.id)
                )
            ).all()
        if not rows and self._published.get(meeting_id, 0) == seen:
            self._none.add(meeting_id)
        return [{**_view(c).as_dict(), "acked_at": iso(acked)} for c, acked in rows]

    async def _any(self, meeting_id: int) -> bool:
        """Whether the meeting has a conclusion, read once for all callers at the same time.

        10,794 sites joining at the start all ask; before anything is concluded one
        read answers them all (else thousands queue on the store's few connections).
        """
        counting = self._counting.get(meeting_id)
        if counting is None:
            counting = asyncio.ensure_future(self._count(meeting_id))
            self._counting[meeting_id] = counting
            counting.add_done_callback(lambda _: self._counting.pop(meeting_id, None))
        return await asyncio.shield(counting)

    async def _count(self, meeting_id: int) -> bool:
        seen = self._published.get(meeting_id, 0)
        async with self.store.db.session() as s:
            n = await s.scalar(
                select(func.count(MeetingConclusion.id)).where(
                    MeetingConclusion.meeting_id == meeting_id
                )
            )
        if not n and self._published.get(meeting_id, 0) == seen:
            self._none.add(meeting_id)
        return bool(n) or self._published.get(meeting_id, 0) != seen

    async def ack(self, site: Actor, conclusion_id: int) -> datetime:
        """A participant site acknowledges reading; a repeat returns the first time."""
        site_id = require_site(site, "acknowledge a conclusion")
        now = self.store.now()
        async with self.store.db.session() as s:
            c = await s.get(MeetingConclusion, conclusion_id)
            if c is None:
                raise NotFound(f"conclusion {conclusion_id} not found")
            meeting_id = c.meeting_id
            member = await s.scalar(
                select(MeetingParticipant.id).where(
                    MeetingParticipant.meeting_id == meeting_id,
                    MeetingParticipant.site_id == site_id,
                )
            )
            if member is None:
                raise Forbidden(
                    f"site {site.name} was not in meeting {meeting_id}", code="not_invited"
                )
            existing = await s.get(MeetingConclusionAck, (conclusion_id, site_id))
            if existing is not None:
                return existing.acked_at
        try:
            async with self.store.db.session() as s:
                s.add(
                    MeetingConclusionAck(conclusion_id=conclusion_id, site_id=site_id, acked_at=now)
                )
        except IntegrityError:
            async with self.store.db.session() as s:
                again = await s.get(MeetingConclusionAck, (conclusion_id, site_id))
                return again.acked_at if again else now
        await self.publisher.staff_event(
            "conclusion.acked",
            {
                "meeting_id": meeting_id,
                "conclusion_id": conclusion_id,
                "site_id": site_id,
                "code": site.name,
            },
            province_id=site.site_province_id,
        )
        return now

    async def status(self, conclusion_id: int, province_id: int | None = None) -> ConclusionStatus:
        """Who has and has not acknowledged (of one province if given)."""
        async with self.store.db.session() as s:
            c = await s.get(MeetingConclusion, conclusion_id)
            if c is None:
                raise NotFound(f"conclusion {conclusion_id} not found")
            pq = select(MeetingParticipant.site_id).where(
                MeetingParticipant.meeting_id == c.meeting_id
            )
            if province_id is not None:
                pq = pq.where(MeetingParticipant.province_id == province_id)
            sites = list((await s.scalars(pq)).all())
            acks = dict(
                (
                    await s.execute(
                        select(MeetingConclusionAck.site_id, MeetingConclusionAck.acked_at).where(
                            MeetingConclusionAck.conclusion_id == conclusion_id
                        )
                    )
                ).all()
            )
            view = _view(c)
        infos = await self.sites.by_ids(sites)
        done: list[SiteAck] = []
        pending: list[SiteAck] = []
        for sid in sorted(sites, key=lambda i: infos[i].code if i in infos else ""):
            info = infos.get(sid)
            entry: SiteAck = {
                "site_id": sid,
                "code": info.code if info else "",
                "name": info.name if info else "",
                "province_name": info.province_name if info else "",
            }
            if sid in acks:
                entry["acked_at"] = acks[sid].isoformat()
                done.append(entry)
            else:
                pending.append(entry)
        return ConclusionStatus(view, done, pending)
