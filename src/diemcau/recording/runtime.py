"""Attach the recording service to the control server: its ports plugged into its peers.

Meetings' floor decisions drive the recording; the media plane's program
recorder, meetings' history and conclusions, the command center's directives and
alerts fill the recording's ports (`diemcau.recording.ports`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from diemcau.actors import Actor
from diemcau.media.recording import ProgramRecorder
from diemcau.meetings.conclusions import Attachment
from diemcau.meetings.history import MeetingHistory
from diemcau.recording.config import RecordingConfig
from diemcau.recording.ports import DirectiveRecord
from diemcau.recording.service import RecordingService
from diemcau.runtime import Runtime

__all__ = ["attach"]


async def attach(runtime: Runtime) -> None:
    """Add ``runtime.services["recording"]`` (after meetings, command and media)."""
    meetings = runtime.services["meetings"]
    command = runtime.services.get("command")

    async def publish_conclusion(
        actor: Actor, meeting_id: int, body: str, attachments: Sequence[Mapping[str, Any]]
    ) -> int:
        view = await meetings.conclusions.publish(
            actor, meeting_id, body, [Attachment(**dict(a)) for a in attachments]
        )
        return int(view.id)

    async def directives(since: datetime, until: datetime) -> list[DirectiveRecord]:
        out: list[DirectiveRecord] = []
        before: int | None = None
        while command is not None:
            page = await command.directives.list_directives(
                Actor.system(), limit=500, before_id=before
            )
            out += [d for d in page if since <= d.issued_at < until]
            if len(page) < 500 or page[-1].issued_at < since:
                break
            before = page[-1].id
        return sorted(out, key=lambda d: d.issued_at)

    service = RecordingService(
        runtime.db,
        RecordingConfig.from_env(runtime.settings.data_dir),
        sites=meetings.sites,
        history=MeetingHistory(runtime.db),
        recorder=ProgramRecorder(lambda: runtime.services.get("media")),
        publish_conclusion=publish_conclusion,
        directives=directives,
        alerts=command.alerts if command is not None else None,
        clock=runtime.clock,
        key=runtime.key,
    )
    meetings.floor.add_floor_listener(service.on_program_change)
    runtime.add_service("recording", service, service.start, service.stop)
