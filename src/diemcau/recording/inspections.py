"""Spot-checks during a meeting: audited always, recorded at central only where the policy says so.

A spot-check is the chair console's own subscription to a site's uplink on its
relay; the central node never carries it. When the meeting's policy has
``record_inspections``, the media plane is asked to carry that site's feed into
the meeting's inspect room on central, recorded there in ``inspect`` segments
(`LiveRecorder` with ``room="inspect"``). The console does not say when the
chair stops watching, so a recorded spot-check lasts until the next one of the
same meeting, the meeting's end, or `RecordingConfig.inspection_s`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from datetime import UTC, datetime

from diemcau.actors import Actor
from diemcau.directory.sites import SiteDirectory
from diemcau.recording.auditing import audit
from diemcau.recording.config import RecordingConfig
from diemcau.recording.policy import Policies
from diemcau.recording.ports import MeetingHistory, ProgramRecorderPort
from diemcau.recording.segments import LiveRecorder
from diemcau.store import Database
from diemcau.tasks import cancel_and_wait

__all__ = ["Inspections"]


@dataclass(eq=False)
class Inspections:
    """The spot-checks of every live meeting, and the recording of those the policy wants."""

    db: Database
    config: RecordingConfig
    recorder: ProgramRecorderPort
    policies: Policies
    sites: SiteDirectory
    history: MeetingHistory
    _: KW_ONLY
    clock: Callable[[], float]
    live: LiveRecorder = field(init=False)
    _wanted: dict[int, bool] = field(init=False, default_factory=dict)
    _timers: dict[int, asyncio.Task[None]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.live = LiveRecorder(
            self.db,
            self.recorder,
            self.config,
            clock=self.clock,
            wanted=self.wanted,
            room="inspect",
        )

    def start(self) -> None:
        self.live.start()

    async def stop(self) -> None:
        for timer in list(self._timers.values()):
            await cancel_and_wait(timer)
        self._timers.clear()
        await self.live.stop()

    async def wanted(self, meeting_id: int) -> bool:
        """Whether the meeting's policy records spot-checks (cached; `policy_changed`)."""
        if meeting_id not in self._wanted:
            self._wanted[meeting_id] = (await self.policies.get(meeting_id)).record_inspections
        return self._wanted[meeting_id]

    async def policy_changed(self, meeting_id: int, record: bool) -> None:
        self._wanted[meeting_id] = record
        if not record:
            await self.end(meeting_id)
        self.live.poke()

    async def follow(self, meeting_id: int) -> None:
        await self.live.follow(meeting_id)

    async def finish(self, meeting_id: int, at: datetime) -> None:
        """The meeting ended: no spot-check of it is recorded any more."""
        await cancel_and_wait(self._timers.pop(meeting_id, None))
        await self.live.unfollow(meeting_id, at)
        self._wanted.pop(meeting_id, None)

    async def spot_check(self, actor: Actor, site_code: str, *, audited: bool = True) -> bool:
        """A spot-check was granted: audit it in the site's live meeting (the timeline
        shows it) and record it if the policy says so; returns whether it is recorded.
        ``audited=False``: the caller audits it itself (an online inspection's
        ``inspection.start`` row, docs/inspection.md)."""
        site = await self.sites.find(site_code)
        meeting_id = await self.history.live_meeting_of(site.id) if site else None
        if site is None or meeting_id is None:
            return False
        recorded = await self.wanted(meeting_id) and await self.recorder.inspect(
            meeting_id, site_code
        )
        if audited:
            await self._audit(actor, site_code, meeting_id, recorded)
        if recorded:
            await cancel_and_wait(self._timers.pop(meeting_id, None))
            self._timers[meeting_id] = asyncio.create_task(
                self._expire(meeting_id), name=f"recording-inspection-{meeting_id}"
            )
            self.live.poke()
        return recorded

    async def _audit(self, actor: Actor, site_code: str, meeting_id: int, recorded: bool) -> None:
        async with self.db.session() as s:
            await audit(
                s,
                actor,
                "inspection.start",
                meeting_id,
                target=site_code,
                details={"recorded": recorded},
                at=datetime.fromtimestamp(self.clock(), UTC),
            )

    async def _expire(self, meeting_id: int) -> None:
        await asyncio.sleep(self.config.inspection_s)
        self._timers.pop(meeting_id, None)
        await self.recorder.inspect(meeting_id, None)
        self.live.poke()

    async def end(self, meeting_id: int) -> None:
        """Stop recording the meeting's spot-check now."""
        await cancel_and_wait(self._timers.pop(meeting_id, None))
        await self.recorder.inspect(meeting_id, None)
        self.live.poke()
