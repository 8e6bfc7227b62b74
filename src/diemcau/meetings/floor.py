"""Floor control: the chair's grants, revokes and mute decisions on a live meeting.

Each decision is one call that, under the meeting's lock, persists the new floor,
bumps the meeting's floor version, appends an audit record, commits, and only then
announces it: one broadcast on the meeting stream (encoded once by the hub), a staff
event, the media plane's ``set_floor`` and every floor listener (docs/meetings.md,
"Floor control").
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypedDict

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from diemcau.actors import Actor
from diemcau.audit import record_audit
from diemcau.directory.sites import SiteDirectory
from diemcau.errors import Conflict, Forbidden, Invalid, NotFound
from diemcau.limits import MAX_SPEAKERS
from diemcau.meetings.access import require_control
from diemcau.meetings.attendance import Attendance
from diemcau.meetings.hands import HandQueue
from diemcau.meetings.models import Meeting, MeetingFloor
from diemcau.meetings.ports import FloorDecision, FloorListener, SpeakerView, call_listener
from diemcau.meetings.publisher import Publisher
from diemcau.meetings.store import MeetingStore
from diemcau.records import JsonObject, Record

__all__ = ["FloorControl", "FloorState", "MAX_SPEAKERS"]


class FloorAudit(TypedDict, total=False):
    """What a floor decision's audit record says (``target`` goes in its own column)."""

    target: str
    add: bool
    speakers: list[int]


Mutation = Callable[[AsyncSession, Meeting, datetime], Awaitable[FloorAudit]]

_SYSTEM = Actor.system()


@dataclass(frozen=True)
class FloorState(Record):
    """A meeting's floor as the chair console shows it (speakers, mute flags, queue size)."""

    meeting_id: int
    speakers: tuple[SpeakerView, ...]
    muted_all: bool
    unmute_allowed: bool
    version: int
    queue_length: int


@dataclass(eq=False, repr=False)
class FloorControl:
    """The floor of every live meeting.

    Args:
        store: the meetings' shared read side (locks, clock, meetings).
        sites: the directory's read model (speakers' codes, names and provinces).
        attendance: who is present (only a present site may get the floor).
        hands: the raise-hand queue (`next` takes its oldest present hand).
        publisher: announces each decision to sites, staff and the media plane.
    """

    store: MeetingStore
    sites: SiteDirectory
    attendance: Attendance
    hands: HandQueue
    publisher: Publisher
    _listeners: list[FloorListener] = field(init=False, default_factory=list)
    # The last decision of each live meeting: what a joining site is told.
    _last: dict[int, FloorDecision] = field(init=False, default_factory=dict)
    # ... and that decision as a joining site is told it, built once for all of them.
    _told: dict[int, tuple[FloorDecision, JsonObject]] = field(init=False, default_factory=dict)
    # Before the first decision: one store read shared by every site joining meanwhile.
    _reading: dict[int, asyncio.Future[FloorState]] = field(init=False, default_factory=dict)

    # --- listeners --------------------------------------------------------------------

    def add_floor_listener(self, callback: FloorListener) -> None:
        """Subscribe to every floor decision, the start and end markers included."""
        self._listeners.append(callback)

    async def notify(self, decision: FloorDecision) -> None:
        if decision.action == "end":
            self._last.pop(decision.meeting_id, None)
            self._told.pop(decision.meeting_id, None)
        else:
            self._last[decision.meeting_id] = decision
        for cb in list(self._listeners):
            await call_listener(cb, decision)

    # --- queries ----------------------------------------------------------------------

    async def _speakers(self, ids: Sequence[int]) -> tuple[SpeakerView, ...]:
        infos = await self.sites.by_ids(ids)
        return tuple(
            SpeakerView(
                i, infos[i].code, infos[i].name, infos[i].province_id, infos[i].province_name
            )
            for i in ids
            if i in infos
        )

    async def state(self, meeting_id: int) -> FloorState:
        async with self.store.db.session() as s:
            m = await self.store.load(s, meeting_id)
            ids = await self.store.speaker_ids(s, meeting_id)
            qlen = await self.hands.count(s, meeting_id)
            muted, unmute, version = m.muted_all, m.unmute_allowed, m.floor_version
        return FloorState(meeting_id, await self._speakers(ids), muted, unmute, version, qlen)

    async def for_site(self, meeting_id: int) -> JsonObject:
        """Speakers and mute flags for a site (from the last decision; no queue details)."""
        last = self._last.get(meeting_id)
        if last is None:
            return _site_floor(await self._shared_state(meeting_id))
        told = self._told.get(meeting_id)
        if told is None or told[0] is not last:
            told = self._told[meeting_id] = (last, _site_floor(last))
        return told[1]

    async def _shared_state(self, meeting_id: int) -> FloorState:
        """`state`, read once for all callers at the same time.

        A national meeting starts with 10,794 joins in seconds, each told the floor:
        one read each would queue thousands on the store's few connections.
        """
        reading = self._reading.get(meeting_id)
        if reading is None:
            reading = asyncio.ensure_future(self.state(meeting_id))
            self._reading[meeting_id] = reading
            reading.add_done_callback(lambda _: self._reading.pop(meeting_id, None))
        return await asyncio.shield(reading)

    # --- chair decisions --------------------------------------------------------------

    async def _decide(
        self, actor: Actor, meeting_id: int, action: str, what: str, mutate: Mutation
    ) -> FloorDecision:
        now = self.store.now()
        async with self.store.lock(meeting_id):
            async with self.store.db.session() as s:
                m = await self.store.load(s, meeting_id)
                if actor.kind != "system":
                    require_control(actor, m, what)
                if m.state != "live":
                    raise Conflict(
                        f"meeting {meeting_id} is not live (it is {m.state})", code="not_live"
                    )
                details = await mutate(s, m, now)
                m.floor_version += 1
                ids = await self.store.speaker_ids(s, meeting_id)
                details["speakers"] = ids
                await record_audit(
                    s,
                    actor,
                    f"floor.{action}",
                    meeting_id,
                    target=details.pop("target", None),
                    details=details,
                    at=now,
                )
                muted, unmute, version = m.muted_all, m.unmute_allowed, m.floor_version
            decision = FloorDecision(
                meeting_id,
                action,
                await self._speakers(ids),
                muted,
                unmute,
                version,
                now,
                actor.name,
            )
            # Announce inside the lock so sites see decisions in version order.
            await self.publisher.broadcast(meeting_id, "floor.changed", decision.as_dict())
            if action not in ("mute_all", "allow_unmute"):
                await self.publisher.set_floor(meeting_id, decision.speaker_codes)
            await self.notify(decision)
        return decision

    async def _require_present(
        self, s: AsyncSession, meeting_id: int, site_ids: Sequence[int]
    ) -> None:
        infos = await self.sites.by_ids(site_ids)
        for sid in site_ids:
            label = infos[sid].code if sid in infos else str(sid)
            if not await self.store.is_participant(s, meeting_id, sid):
                raise Forbidden(
                    f"site {label} is not invited to meeting {meeting_id}", code="not_invited"
                )
            if not self.attendance.is_present(meeting_id, sid):
                raise Conflict(f"site {label} is not present in the meeting", code="not_present")

    async def _set_speakers(
        self, s: AsyncSession, meeting_id: int, keep: Sequence[int], now: datetime, by: str
    ) -> None:
        current = set(await self.store.speaker_ids(s, meeting_id))
        gone = current - set(keep)
        if gone:
            await s.execute(
                update(MeetingFloor)
                .where(
                    MeetingFloor.meeting_id == meeting_id,
                    MeetingFloor.revoked_at.is_(None),
                    MeetingFloor.site_id.in_(gone),
                )
                .values(revoked_at=now)
            )
        for sid in keep:
            if sid not in current:
                s.add(
                    MeetingFloor(meeting_id=meeting_id, site_id=sid, granted_at=now, granted_by=by)
                )
        await self.hands.close_granted(s, meeting_id, keep, now)
        await s.flush()

    async def grant(
        self,
        actor: Actor,
        meeting_id: int,
        site_ids: Sequence[int] = (),
        *,
        codes: Sequence[str] = (),
        add: bool = False,
    ) -> FloorDecision:
        """Give the floor to one site, or two for a dialogue.

        Args:
            site_ids: one or two sites; they replace the current speakers unless `add`.
            codes: the same by site code (as the chair console names them), after the ids.
            add: keep the current speaker and add this one (a dialogue), at most two.
        """
        wanted = list(dict.fromkeys([*site_ids, *await self._ids_of(codes)]))
        if not wanted:
            raise Invalid("name one or two sites (site_ids or site_codes)")
        if not 1 <= len(wanted) <= MAX_SPEAKERS:
            raise Invalid(f"grant the floor to 1 to {MAX_SPEAKERS} sites")

        async def mutate(s: AsyncSession, m: Meeting, now: datetime) -> FloorAudit:
            await self._require_present(s, meeting_id, wanted)
            keep = wanted
            if add:
                keep = list(dict.fromkeys([*await self.store.speaker_ids(s, meeting_id), *wanted]))
                if len(keep) > MAX_SPEAKERS:
                    raise Conflict(
                        f"at most {MAX_SPEAKERS} sites hold the floor at once; revoke one first",
                        code="floor_full",
                    )
            await self._set_speakers(s, meeting_id, keep, now, _granted_by(actor))
            infos = await self.sites.by_ids(wanted)
            return {"target": ",".join(infos[i].code for i in wanted if i in infos), "add": add}

        return await self._decide(actor, meeting_id, "grant", "give the floor", mutate)

    async def revoke(
        self, actor: Actor, meeting_id: int, site_id: int | None = None
    ) -> FloorDecision:
        """Take the floor back from one speaker, or from everyone when `site_id` is None."""

        async def mutate(s: AsyncSession, m: Meeting, now: datetime) -> FloorAudit:
            current = await self.store.speaker_ids(s, meeting_id)
            if site_id is None:
                if not current:
                    raise Conflict("nobody holds the floor", code="floor_empty")
                keep: list[int] = []
                target = "*"
            else:
                if site_id not in current:
                    raise Conflict(f"site {site_id} does not hold the floor", code="not_speaker")
                keep = [i for i in current if i != site_id]
                info = await self.sites.get(site_id)
                target = info.code if info else str(site_id)
            await self._set_speakers(s, meeting_id, keep, now, "")
            return {"target": target}

        return await self._decide(actor, meeting_id, "revoke", "take the floor back", mutate)

    async def next(self, actor: Actor, meeting_id: int) -> FloorDecision:
        """Give the floor to the first present site in the queue (replacing the speaker)."""

        async def mutate(s: AsyncSession, m: Meeting, now: datetime) -> FloorAudit:
            waiting = await self.hands.waiting(s, meeting_id)
            chosen = next(
                (sid for sid in waiting if self.attendance.is_present(meeting_id, sid)), None
            )
            if chosen is None:
                raise Conflict("the raise-hand queue has no present site", code="queue_empty")
            await self._set_speakers(s, meeting_id, [chosen], now, _granted_by(actor))
            info = await self.sites.get(chosen)
            return {"target": info.code if info else str(chosen)}

        return await self._decide(actor, meeting_id, "next", "give the floor", mutate)

    async def mute_all(self, actor: Actor, meeting_id: int) -> FloorDecision:
        """Mute every site but the speakers and forbid self-unmute."""

        async def mutate(s: AsyncSession, m: Meeting, now: datetime) -> FloorAudit:
            m.muted_all, m.unmute_allowed = True, False
            return {}

        return await self._decide(actor, meeting_id, "mute_all", "mute all sites", mutate)

    async def allow_unmute(self, actor: Actor, meeting_id: int) -> FloorDecision:
        """Let sites unmute themselves again."""

        async def mutate(s: AsyncSession, m: Meeting, now: datetime) -> FloorAudit:
            m.muted_all, m.unmute_allowed = False, True
            return {}

        return await self._decide(actor, meeting_id, "allow_unmute", "allow unmuting", mutate)

    async def speaker_left(self, meeting_id: int, site_id: int) -> None:
        """A speaker left or was removed: the system takes the floor back from it."""
        async with self.store.db.session() as s:
            current = await self.store.speaker_ids(s, meeting_id)
        if site_id in current:
            try:
                await self.revoke(_SYSTEM, meeting_id, site_id)
            except Conflict:
                return

    async def _ids_of(self, codes: Sequence[str]) -> list[int]:
        """Site ids of `codes`, in order; an unknown code is refused with 404 naming it."""
        if not codes:
            return []
        found = await self.sites.by_codes(codes)
        if len(found) < len(set(codes)) and await self.sites.refresh_if_changed():
            found = await self.sites.by_codes(codes)  # provisioned since the last load
        for code in codes:
            if code not in found:
                raise NotFound(f"site code {code!r} not found", code="unknown_site")
        return [found[code].id for code in codes]


def _site_floor(floor: FloorDecision | FloorState) -> JsonObject:
    """What a site is told of the floor: speakers and mute flags, no queue details."""
    return {
        "speakers": [sp.as_dict() for sp in floor.speakers],
        "muted_all": floor.muted_all,
        "unmute_allowed": floor.unmute_allowed,
        "version": floor.version,
    }


def _granted_by(actor: Actor) -> str:
    """Who granted, as the floor rows record it: a staff username, empty for the system."""
    return actor.name if actor.kind == "staff" else ""
