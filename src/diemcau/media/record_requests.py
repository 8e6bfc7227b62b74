"""The control plane's requests that point a room's Janus recording at a folder, or off.

Recording is the control plane's alone: rooms are made with ``lock_record`` and a
folder that cannot exist (`NO_RECORDING_DIR`, `room_requests`), and only these
requests, which need the room secret, point a room at a real folder
(docs/recording.md), and only in rooms no browser publishes into.
"""

from __future__ import annotations

from diemcau.media.control_link import ERR_NO_SUCH_ROOM, NO_RECORDING_DIR, ControlLink
from diemcau.media.janus import JanusError

__all__ = ["RecordRequests"]


class RecordRequests(ControlLink):
    """Recording of one node's rooms, switched on into a folder and off again."""

    async def start_recording(self, room: int, rec_dir: str) -> None:
        """Record every publisher now in ``room`` into ``rec_dir`` (a folder on the node).

        Recording is switched off first, so publishers that arrived since the last
        start are included (1.1.2 starts a publisher's recorder only when the room's
        recording switches on) and each start gets fresh files in the new folder.
        """
        await self.stop_recording(room)
        await self.request(
            {"request": "edit", "room": room, "secret": self.room_secret, "new_rec_dir": rec_dir}
        )
        await self.request(
            {
                "request": "enable_recording",
                "room": room,
                "secret": self.room_secret,
                "record": True,
            }
        )

    async def stop_recording(self, room: int) -> None:
        """Close every recording of ``room`` and point it back at `NO_RECORDING_DIR`."""
        try:
            await self.request(
                {
                    "request": "enable_recording",
                    "room": room,
                    "secret": self.room_secret,
                    "record": False,
                }
            )
            await self.request(
                {
                    "request": "edit",
                    "room": room,
                    "secret": self.room_secret,
                    "new_rec_dir": NO_RECORDING_DIR,
                }
            )
        except JanusError as exc:
            if exc.code != ERR_NO_SUCH_ROOM:
                raise
