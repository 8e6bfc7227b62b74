"""Janus recording of a meeting's program on the central node, as the control plane drives it.

The program room on central holds the chair and every floor speaker as remote
publishers (docs/media.md). Janus 1.1.2 records remote publishers, but starts a
publisher's recorder only when the room's recording is switched on: a speaker
that arrives later is not recorded until recording is switched off and on again.
`ProgramRecorder` therefore offers the three things the recording service needs
to cut the program into segments with a constant set of feeds: which feeds are
in the room now, start recording them into a folder, stop. The same three work
on a meeting's inspect room (``room="inspect"``), into which `inspect` carries
the site of a spot-check that the meeting's policy wants recorded. It is the recording
service's port (``diemcau.recording.ports.ProgramRecorderPort``), satisfied
structurally, so neither package imports the other.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from diemcau.media.ids import feed_id, room_id
from diemcau.media.janus import JanusError
from diemcau.media.orchestrator import MediaOrchestrator

__all__ = ["ProgramRecorder"]

ROOMS = ("program", "inspect")

log = logging.getLogger(__name__)


class ProgramRecorder:
    """Recording of program rooms on the central node.

    Args:
        orchestrator: returns the running orchestrator, or None while no media plane runs.
    """

    def __init__(self, orchestrator: Callable[[], MediaOrchestrator | None]) -> None:
        self._orchestrator = orchestrator

    @staticmethod
    def _room(meeting_id: int, room: str) -> int:
        if room not in ROOMS:
            raise ValueError(f"unknown recorded room {room!r}")
        return room_id(room, str(meeting_id))

    def _running(self, meeting_id: int) -> MediaOrchestrator | None:
        orch = self._orchestrator()
        if orch is None or str(meeting_id) not in orch.meetings:
            return None
        if not orch.registry.is_up(orch.central.name):
            return None
        return orch

    async def publishers(
        self, meeting_id: int, room: str = "program"
    ) -> dict[int, tuple[str, str | None]] | None:
        """Feed id → (role, site code) of every publisher in one of central's rooms.

        Roles: ``chair``, ``floor`` (a speaker, with its site code), ``inspection``
        (the inspected site) or ``other``. None when no program of this meeting
        runs on a healthy central node, or the room is not there.
        """
        orch = self._running(meeting_id)
        if orch is None:
            return None
        program = orch.meetings[str(meeting_id)]
        try:
            parts = await orch.control(orch.central.name).participants(self._room(meeting_id, room))
        except (OSError, JanusError) as exc:
            log.debug("%s room of meeting %s not readable: %s", room, meeting_id, exc)
            return None
        speakers = {feed_id("site", code): code for code in program.floor}
        if room == "inspect":
            speakers = (
                {feed_id("site", program.inspect): program.inspect} if program.inspect else {}
            )
        out: dict[int, tuple[str, str | None]] = {}
        for p in parts:
            if not p.get("publisher"):
                continue
            fid = int(p["id"])
            if fid == program.chair_feed:
                out[fid] = ("chair", None)
            elif fid in speakers:
                out[fid] = ("floor" if room == "program" else "inspection", speakers[fid])
            else:
                out[fid] = ("other", None)
        return out

    async def record(self, meeting_id: int, node_folder: str, room: str = "program") -> bool:
        """Record every publisher now in the room into ``node_folder`` (on central).

        Returns False when no program of this meeting runs (nothing was started).
        """
        orch = self._running(meeting_id)
        if orch is None:
            return False
        ctl = orch.control(orch.central.name)
        await ctl.start_recording(self._room(meeting_id, room), node_folder)
        return True

    async def stop(self, meeting_id: int, room: str = "program") -> None:
        """Close the room's recordings (nothing to do when the program is gone)."""
        orch = self._orchestrator()
        if orch is None or not orch.registry.is_up(orch.central.name):
            return
        try:
            await orch.control(orch.central.name).stop_recording(self._room(meeting_id, room))
        except (OSError, JanusError) as exc:
            log.warning("stopping the recording of meeting %s: %s", meeting_id, exc)

    async def inspect(self, meeting_id: int, site_code: str | None) -> bool:
        """Carry ``site_code``'s own feed into the meeting's inspect room (None: stop).

        Returns False when no program of this meeting runs.
        """
        orch = self._orchestrator()
        if orch is None or str(meeting_id) not in orch.meetings:
            return False
        await orch.set_inspection(meeting_id, site_code)
        return True
