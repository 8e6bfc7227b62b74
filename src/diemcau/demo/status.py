"""The demo's status line every 10 s: attendance, the floor and the media nodes."""

from __future__ import annotations

import asyncio

from diemcau.demo.output import say
from diemcau.demo.pacing import pause
from diemcau.demo.services import DemoServices
from diemcau.media.orchestrator import MediaOrchestrator

__all__ = ["media_status", "report_status", "status_line"]

EVERY_S = 10.0


def media_status(orch: MediaOrchestrator) -> str:
    """``nodes central (central) up; relay-1 (relay) up, 12 sites; ...``"""
    parts = [
        f"{n.node} ({n.role}) {'up' if n.up else 'DOWN'}"
        + (f", {n.sites} sites" if n.role == "relay" else "")
        for n in orch.status()
    ]
    return "nodes " + "; ".join(parts)


async def status_line(services: DemoServices, meeting_id: int) -> str:
    """Who is present and who holds the floor in the meeting; the media nodes."""
    summary = await services.meetings.roll_call.summary(meeting_id)
    total = summary.total
    floor = await services.meetings.floor.state(meeting_id)
    speakers = ", ".join(s.code for s in floor.speakers) or "-"
    line = f"status: present {total.present}/{total.invited}, floor {speakers}"
    if services.media is not None:
        line += f"; media {media_status(services.media)}"
    return line


async def report_status(services: DemoServices, meeting_id: int, stop: asyncio.Event) -> None:
    """Print `status_line` every 10 s until ``stop``."""
    while await pause(stop, EVERY_S):
        try:
            say(await status_line(services, meeting_id))
        except Exception as exc:
            say(f"status unavailable: {exc!r}")
