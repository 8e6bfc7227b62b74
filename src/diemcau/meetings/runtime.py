"""Attach the meeting service to the control server's runtime."""

from __future__ import annotations

from collections.abc import Sequence

from diemcau.meetings.service import MeetingService
from diemcau.runtime import Runtime

__all__ = ["attach"]


class _RuntimeMedia:
    """The meetings' media port: forwards to the media orchestrator while the plane runs.

    The media plane attaches after meetings (and may not run at all), so the
    orchestrator is looked up at each call; without it the call does nothing.
    """

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    async def start_program(self, meeting_id: int) -> None:
        orch = self._runtime.services.get("media")
        if orch is not None:
            await orch.start_program(meeting_id)

    async def stop_program(self, meeting_id: int) -> None:
        orch = self._runtime.services.get("media")
        if orch is not None:
            await orch.stop_program(meeting_id)

    async def set_floor(self, meeting_id: int, site_codes: Sequence[str]) -> None:
        orch = self._runtime.services.get("media")
        if orch is not None:
            await orch.set_floor(meeting_id, list(site_codes))


async def attach(runtime: Runtime) -> None:
    """Add ``runtime.services["meetings"]``; it needs the presence hub attached before it.

    Running programs are re-declared to the media plane by the media layer when it
    starts (from `MeetingService.live_floors`), once.
    """
    service = MeetingService(
        runtime.db,
        runtime.services.get("presence"),
        clock=runtime.clock,
        media=_RuntimeMedia(runtime),
    )
    service.register()
    runtime.add_service("meetings", service, service.start, service.stop)
