"""Floor control: the raise-hand queue and the chair's grants, revokes and mute decisions.

Each decision is one call that, under the meeting's lock, persists the new floor,
bumps the meeting's floor version, appends an audit record, commits, and only then
announces it: one broadcast on the meeting stream (encoded once by the hub), a staff
event, the media orchestrator's ``set_floor`` and every floor listener.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from diemcau.accounts.service import SitePrincipal
from diemcau.errors import Conflict, Forbidden, Invalid
from diemcau.meetings.audit import record_audit
from diemcau.meetings.models import Meeting, MeetingFloor, MeetingHand
from diemcau.meetings.ports import FloorDecision, FloorListener, SpeakerView, call_maybe_async

if TYPE_CHECKING:
    from diemcau.meetings.service import MeetingService

__all__ = ["FloorControl", "FloorState", "QueueEntry", "MAX_SPEAKERS", "own_request"]

# One speaker, or two for a dialogue.
MAX_SPEAKERS = 2

Mutation = Callable[[AsyncSession, Meeting, datetime], Awaitable[dict[str, Any]]]


def own_request(site: SitePrincipal, body: Mapping[str, Any]) -> int | None:
    """The meeting id a site message names; refuse a message that speaks for another site."""
    other = body.get("site_id")
    if other is not None and other != site.site_id:
        raise Forbidden("a site may act only for itself", code="not_your_site")
    code = body.get("site_code")
    if code is not None and code != site.code:
        raise Forbidden("a site may act only for itself", code="not_your_site")
    meeting_id = body.get("meeting_id")
    if meeting_id is None:
        return None
    if isinstance(meeting_id, bool) or not isinstance(meeting_id, int):
        raise Invalid("meeting_id must be an integer")
    return meeting_id


@dataclass(frozen=True)
class QueueEntry:
    """A raised hand in the queue (position 1 is next)."""

    position: int
    site_id: int
    code: str
    name: str
    province_id: int | None
    province_name: str
    raised_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "site_id": self.site_id,
            "code": self.code,
            "name": self.name,
            "province_id": self.province_id,
            "province_name": self.province_name,
            "raised_at": self.raised_at.isoformat(),
        }


@dataclass(frozen=True)
class FloorState:
    meeting_id: int
    speakers: tuple[SpeakerView, ...]
    muted_all: bool
    unmute_allowed: bool
    version: int
    queue_length: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "meeting_id": self.meeting_id,
            "speakers": [s.as_dict() for s in self.speakers],
            "muted_all": self.muted_all,
            "unmute_allowed": self.unmute_allowed,
            "version": self.version,
            "queue_length": self.queue_length,
        }


class FloorControl:
    """The floor of every meeting of a `MeetingService`."""

    def __init__(self, svc: MeetingService) -> None:
        self.svc = svc
        self._listeners: list[FloorListener] = []
        # The last decision of each live meeting: what a joining site is told.
        self._last: dict[int, FloorDecision] = {}
        # Before the first decision: one store read shared by every site joining meanwhile.
        self._reading: dict[int, asyncio.Future[FloorState]] = {}

    # --- listeners --------------------------------------------------------------------

    def add_floor_listener(self, callback: FloorListener) -> None:
        """Subscribe to every floor decision (the media layer switches the program on it)."""
        self._listeners.append(callback)

    async def notify(self, decision: FloorDecision) -> None:
        if decision.action == "end":
            self._last.pop(decision.meeting_id, None)
        else:
            self._last[decision.meeting_id] = decision
        for cb in list(self._listeners):
            await call_maybe_async("floor listener", cb, decision)

    # --- queries ----------------------------------------------------------------------

    async def _speaker_ids(self, s: AsyncSession, meeting_id: int) -> list[int]:
        rows = await s.scalars(
            select(MeetingFloor.site_id)
            .where(MeetingFloor.meeting_id == meeting_id, MeetingFloor.revoked_at.is_(None))
            .order_by(MeetingFloor.id)
        )
        return list(rows.all())

    async def _speakers(self, ids: Sequence[int]) -> tuple[SpeakerView, ...]:
        infos = await self.svc.site_infos(ids)
        return tuple(
            SpeakerView(
                i, infos[i].code, infos[i].name, infos[i].province_id, infos[i].province_name
            )
            for i in ids
            if i in infos
        )

    async def queue(self, meeting_id: int) -> list[QueueEntry]:
        """Open hands of a meeting, oldest first."""
        async with self.svc.db.session() as s:
            await self.svc.load(s, meeting_id)
            rows = (
                await s.execute(
                    select(MeetingHand.site_id, MeetingHand.raised_at)
                    .where(MeetingHand.meeting_id == meeting_id, MeetingHand.closed_at.is_(None))
                    .order_by(MeetingHand.raised_at, MeetingHand.id)
                )
            ).all()
        infos = await self.svc.site_infos(sid for sid, _ in rows)
        out = []
        for pos, (sid, at) in enumerate(rows, start=1):
            info = infos.get(sid)
            out.append(
                QueueEntry(
                    pos,
                    sid,
                    info.code if info else "",
                    info.name if info else "",
                    info.province_id if info else None,
                    info.province_name if info else "",
                    at,
                )
            )
        return out

    async def state(self, meeting_id: int) -> FloorState:
        async with self.svc.db.session() as s:
            m = await self.svc.load(s, meeting_id)
            ids = await self._speaker_ids(s, meeting_id)
            qlen = await s.scalar(
                select(func.count())
                .select_from(MeetingHand)
                .where(MeetingHand.meeting_id == meeting_id, MeetingHand.closed_at.is_(None))
            )
            muted, unmute, version = m.muted_all, m.unmute_allowed, m.floor_version
        return FloorState(
            meeting_id, await self._speakers(ids), muted, unmute, version, int(qlen or 0)
        )

    async def for_site(self, meeting_id: int) -> dict[str, Any]:
        """Speakers and mute flags for a site (from the last decision; no queue details)."""
        last = self._last.get(meeting_id)
        if last is None:
            state = await self._shared_state(meeting_id)
            return {
                "speakers": [sp.as_dict() for sp in state.speakers],
                "muted_all": state.muted_all,
                "unmute_allowed": state.unmute_allowed,
                "version": state.version,
            }
        return {
            "speakers": [sp.as_dict() for sp in last.speakers],
            "muted_all": last.muted_all,
            "unmute_allowed": last.unmute_allowed,
            "version": last.version,
        }

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
        self, actor: object, meeting_id: int, action: str, what: str, mutate: Mutation
    ) -> FloorDecision:
        now = self.svc.now()
        async with self.svc.lock(meeting_id):
            async with self.svc.db.session() as s:
                m = await self.svc.load(s, meeting_id)
                if actor != "system":
                    self.svc.require_control(actor, m, what)
                if m.state != "live":
                    raise Conflict(
                        f"meeting {meeting_id} is not live (it is {m.state})", code="not_live"
                    )
                details = await mutate(s, m, now)
                m.floor_version += 1
                ids = await self._speaker_ids(s, meeting_id)
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
                getattr(actor, "username", str(actor)),
            )
            # Announce inside the lock so sites see decisions in version order.
            await self.svc.publish(meeting_id, "floor.changed", decision.as_dict())
            if action not in ("mute_all", "allow_unmute"):
                await self.svc.media_call("set_floor", meeting_id, decision.speaker_codes)
            await self.notify(decision)
        return decision

    async def _require_present(
        self, s: AsyncSession, meeting_id: int, site_ids: Sequence[int]
    ) -> None:
        infos = await self.svc.site_infos(site_ids)
        for sid in site_ids:
            label = infos[sid].code if sid in infos else str(sid)
            if not await self.svc.is_participant(s, meeting_id, sid):
                raise Forbidden(
                    f"site {label} is not invited to meeting {meeting_id}", code="not_invited"
                )
            if not self.svc.attendance.is_present(meeting_id, sid):
                raise Conflict(f"site {label} is not present in the meeting", code="not_present")

    async def _set_speakers(
        self, s: AsyncSession, meeting_id: int, keep: Sequence[int], now: datetime, by: str
    ) -> None:
        current = set(await self._speaker_ids(s, meeting_id))
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
        if keep:
            await s.execute(
                update(MeetingHand)
                .where(
                    MeetingHand.meeting_id == meeting_id,
                    MeetingHand.closed_at.is_(None),
                    MeetingHand.site_id.in_(keep),
                )
                .values(closed_at=now, outcome="granted")
            )
        await s.flush()

    async def grant(
        self, actor: object, meeting_id: int, site_ids: Sequence[int], *, add: bool = False
    ) -> FloorDecision:
        """Give the floor to one site, or two for a dialogue.

        Args:
            site_ids: one or two sites; they replace the current speakers unless `add`.
            add: keep the current speaker and add this one (a dialogue), at most two.
        """
        wanted = list(dict.fromkeys(site_ids))
        if not 1 <= len(wanted) <= MAX_SPEAKERS:
            raise Invalid(f"grant the floor to 1 to {MAX_SPEAKERS} sites")

        async def mutate(s: AsyncSession, m: Meeting, now: datetime) -> dict[str, Any]:
            await self._require_present(s, meeting_id, wanted)
            keep = wanted
            if add:
                keep = list(dict.fromkeys([*await self._speaker_ids(s, meeting_id), *wanted]))
                if len(keep) > MAX_SPEAKERS:
                    raise Conflict(
                        f"at most {MAX_SPEAKERS} sites hold the floor at once; revoke one first",
                        code="floor_full",
                    )
            await self._set_speakers(s, meeting_id, keep, now, getattr(actor, "username", ""))
            infos = await self.svc.site_infos(wanted)
            return {"target": ",".join(infos[i].code for i in wanted if i in infos), "add": add}

        return await self._decide(actor, meeting_id, "grant", "give the floor", mutate)

    async def revoke(
        self, actor: object, meeting_id: int, site_id: int | None = None
    ) -> FloorDecision:
        """Take the floor back from one speaker, or from everyone when `site_id` is None."""

        async def mutate(s: AsyncSession, m: Meeting, now: datetime) -> dict[str, Any]:
            current = await self._speaker_ids(s, meeting_id)
            if site_id is None:
                if not current:
                    raise Conflict("nobody holds the floor", code="floor_empty")
                keep: list[int] = []
                target = "*"
            else:
                if site_id not in current:
                    raise Conflict(f"site {site_id} does not hold the floor", code="not_speaker")
                keep = [i for i in current if i != site_id]
                infos = await self.svc.site_infos([site_id])
                target = infos[site_id].code if site_id in infos else str(site_id)
            await self._set_speakers(s, meeting_id, keep, now, "")
            return {"target": target}

        return await self._decide(actor, meeting_id, "revoke", "take the floor back", mutate)

    async def next(self, actor: object, meeting_id: int) -> FloorDecision:
        """Give the floor to the first present site in the queue (replacing the speaker)."""

        async def mutate(s: AsyncSession, m: Meeting, now: datetime) -> dict[str, Any]:
            rows = (
                await s.execute(
                    select(MeetingHand.id, MeetingHand.site_id)
                    .where(MeetingHand.meeting_id == meeting_id, MeetingHand.closed_at.is_(None))
                    .order_by(MeetingHand.raised_at, MeetingHand.id)
                )
            ).all()
            chosen = next(
                (sid for _, sid in rows if self.svc.attendance.is_present(meeting_id, sid)), None
            )
            if chosen is None:
                raise Conflict("the raise-hand queue has no present site", code="queue_empty")
            await self._set_speakers(s, meeting_id, [chosen], now, getattr(actor, "username", ""))
            infos = await self.svc.site_infos([chosen])
            return {"target": infos[chosen].code if chosen in infos else str(chosen)}

        return await self._decide(actor, meeting_id, "next", "give the floor", mutate)

    async def mute_all(self, actor: object, meeting_id: int) -> FloorDecision:
        """Mute every site but the speakers and forbid self-unmute."""

        async def mutate(s: AsyncSession, m: Meeting, now: datetime) -> dict[str, Any]:
            m.muted_all, m.unmute_allowed = True, False
            return {}

        return await self._decide(actor, meeting_id, "mute_all", "mute all sites", mutate)

    async def allow_unmute(self, actor: object, meeting_id: int) -> FloorDecision:
        """Let sites unmute themselves again."""

        async def mutate(s: AsyncSession, m: Meeting, now: datetime) -> dict[str, Any]:
            m.muted_all, m.unmute_allowed = False, True
            return {}

        return await self._decide(actor, meeting_id, "allow_unmute", "allow unmuting", mutate)

    async def speaker_left(self, meeting_id: int, site_id: int) -> None:
        """A speaker left or was removed: the system takes the floor back from it."""
        async with self.svc.db.session() as s:
            current = await self._speaker_ids(s, meeting_id)
        if site_id in current:
            try:
                await self.revoke("system", meeting_id, site_id)
            except Conflict:
                return

    # --- site actions -----------------------------------------------------------------

    async def raise_hand(self, site: SitePrincipal, meeting_id: int | None = None) -> QueueEntry:
        """A present site asks for the floor; raising twice keeps its place."""
        view = await self.svc.site_meeting(site, meeting_id)
        if view.state != "live":
            raise Conflict(f"meeting {view.id} is not live", code="not_live")
        if not self.svc.attendance.is_present(view.id, site.site_id):
            raise Conflict("join the meeting before raising your hand", code="not_present")
        now = self.svc.now()
        try:
            async with self.svc.db.session() as s:
                if site.site_id in await self._speaker_ids(s, view.id):
                    raise Conflict("this site already holds the floor", code="has_floor")
                existing = await s.scalar(
                    select(MeetingHand.id).where(
                        MeetingHand.meeting_id == view.id,
                        MeetingHand.site_id == site.site_id,
                        MeetingHand.closed_at.is_(None),
                    )
                )
                if existing is None:
                    s.add(MeetingHand(meeting_id=view.id, site_id=site.site_id, raised_at=now))
        except IntegrityError:
            pass  # raised concurrently: the first one keeps its place
        entry = await self._entry(view.id, site.site_id)
        await self._queue_event(view.id, "hand.raised", entry)
        return entry

    async def _entry(self, meeting_id: int, site_id: int) -> QueueEntry:
        async with self.svc.db.session() as s:
            hand = (
                await s.execute(
                    select(MeetingHand.id, MeetingHand.raised_at).where(
                        MeetingHand.meeting_id == meeting_id,
                        MeetingHand.site_id == site_id,
                        MeetingHand.closed_at.is_(None),
                    )
                )
            ).first()
            if hand is None:
                raise Conflict("this site's hand is not raised", code="hand_down")
            hid, at = hand
            ahead = await s.scalar(
                select(func.count())
                .select_from(MeetingHand)
                .where(
                    MeetingHand.meeting_id == meeting_id,
                    MeetingHand.closed_at.is_(None),
                    tuple_(MeetingHand.raised_at, MeetingHand.id) < tuple_(at, hid),
                )
            )
        info = (await self.svc.site_infos([site_id]))[site_id]
        return QueueEntry(
            int(ahead or 0) + 1,
            site_id,
            info.code,
            info.name,
            info.province_id,
            info.province_name,
            at,
        )

    async def _queue_event(
        self, meeting_id: int, kind: str, entry: QueueEntry | None, **extra: Any
    ) -> None:
        body: dict[str, Any] = {"meeting_id": meeting_id, **extra}
        if entry is not None:
            body["entry"] = entry.as_dict()
        try:
            await self.svc.hub.publish_staff_event(kind, body)
        except Exception:  # a staff event is advisory; the hand is stored
            return

    async def lower_hand(self, site: SitePrincipal, meeting_id: int | None = None) -> None:
        view = await self.svc.site_meeting(site, meeting_id)
        await self.close_hand(view.id, site.site_id, "lowered")

    async def close_hand(self, meeting_id: int, site_id: int, outcome: str) -> bool:
        now = self.svc.now()
        async with self.svc.db.session() as s:
            result = await s.execute(
                update(MeetingHand)
                .where(
                    MeetingHand.meeting_id == meeting_id,
                    MeetingHand.site_id == site_id,
                    MeetingHand.closed_at.is_(None),
                )
                .values(closed_at=now, outcome=outcome)
            )
        closed = bool(getattr(result, "rowcount", 0))
        if closed:
            info = (await self.svc.site_infos([site_id])).get(site_id)
            await self._queue_event(
                meeting_id,
                "hand.lowered",
                None,
                site_id=site_id,
                code=info.code if info else "",
                outcome=outcome,
            )
        return closed

    async def handle_raise(self, site: SitePrincipal, body: Mapping[str, Any]) -> Mapping[str, Any]:
        entry = await self.raise_hand(site, own_request(site, body))
        return {
            "raised": True,
            "position": entry.position,
            "raised_at": entry.raised_at.isoformat(),
        }

    async def handle_lower(self, site: SitePrincipal, body: Mapping[str, Any]) -> Mapping[str, Any]:
        await self.lower_hand(site, own_request(site, body))
        return {"raised": False}
