"""Attach the meeting service to the control server's runtime."""

from __future__ import annotations

from typing import Any

from diemcau.meetings.service import MeetingService
from diemcau.runtime import Runtime

__all__ = ["attach"]


async def attach(runtime: Runtime) -> None:
    """Add ``runtime.services["meetings"]``; it needs the presence hub attached before it.

    The media orchestrator is looked up at each use, so it may attach later or not at all.
    """

    def media() -> Any | None:
        return runtime.services.get("media")

    service = MeetingService(
        runtime.db, runtime.services.get("presence"), clock=runtime.clock, media=media
    )
    service.register()
    runtime.add_service("meetings", service, service.start, service.stop)
