"""The control plane's requests for a node's rooms: create with their options, pins, lists.

`ensure_room` is the one place room options are set (docs/media.md, "Who may
publish and watch"): every room gets an ``allowed`` list (the control plane's own
token and the publish tokens it is given: no other publisher ``join`` passes),
``lock_record`` with the room secret (a publisher's ``configure``/``publish``
cannot switch recording on) and a ``rec_dir`` that cannot exist
(`NO_RECORDING_DIR`), because 1.1.2 does not apply ``lock_record`` to
``joinandconfigure``: a publisher asking to record there with its own file name
gets nothing written anywhere. Recording is the control plane's alone
(`record_requests`). Rooms are private (hidden from ``list`` without the admin
key) and require signed room tokens to join. A program room also gets a ``pin``
(`set_pin`).

Janus VideoRoom API: https://janus.conf.meetecho.com/docs/videoroom.html
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from diemcau.media.control_link import (
    ERR_NO_SUCH_ROOM,
    ERR_ROOM_EXISTS,
    NO_RECORDING_DIR,
    SENTINEL_ROOM,
    ControlLink,
)
from diemcau.media.janus import JanusError, integer, objects, values
from diemcau.records import JsonObject

__all__ = ["RoomInfo", "RoomRequests"]


@dataclass(frozen=True)
class RoomInfo:
    """A room as ``list`` shows it to the admin key: enough to tell ours from stale ones."""

    room: int
    description: str
    lock_record: bool
    pin_required: bool


class RoomRequests(ControlLink):
    """Rooms on one node: made, given pins, asked for their allowed list, destroyed, listed."""

    async def ensure_room(
        self,
        room: int,
        description: str,
        *,
        publishers: int = 6,
        allowed: Sequence[str] = (),
        pin: str | None = None,
        notify_joining: bool = False,
    ) -> bool:
        """Create the room unless it exists; returns whether it was created.

        Args:
            publishers: how many may publish at once.
            allowed: the publish tokens of whoever may publish here besides the
                control plane (`rights.publish_token`). Empty: remote publishers
                only (the control plane adds them with the room secret), as in a
                program room.
            pin: the room's pin, asked of every ``join`` (viewers included).
            notify_joining: the publisher is told when any participant joins or
                leaves (how a site learns it is being watched, `looks`).

        A room that exists already keeps its options (see `set_pin`).
        """
        options: JsonObject = {
            "request": "create",
            "room": room,
            "admin_key": self.node.admin_key,
            "secret": self.room_secret,
            "description": description[:120],
            "is_private": True,
            "signed_tokens": True,
            "allowed": [self.control_token(room), *allowed],
            "lock_record": True,
            "rec_dir": NO_RECORDING_DIR,
            "publishers": publishers,
            "audiocodec": "opus",
            "videocodec": "vp8",
            "notify_joining": notify_joining,
            "bitrate": 0,
            # Opus in-band FEC negotiated with every publisher and viewer (the
            # default of 1.1.2, said here since older versions differ).
            "opus_fec": True,
        }
        if pin is not None:
            options["pin"] = pin
        try:
            await self.request(options)
        except JanusError as exc:
            if exc.code == ERR_ROOM_EXISTS:
                return False
            raise
        if pin is not None:
            self.pins[room] = pin
        return True

    async def allowed(self, room: int) -> set[str]:
        """The room's allowed list (``allowed`` ``enable``: the check stays on)."""
        data = await self.request(
            {"request": "allowed", "room": room, "secret": self.room_secret, "action": "enable"}
        )
        return {str(t) for t in values(data, "allowed")}

    async def replace_allowed(self, room: int, old: str, new: str, description: str) -> None:
        """Put ``new`` in the room's allowed list, then take ``old`` out, and describe the
        room anew. Later publisher joins need ``new``; a publisher already in the room
        stays (VideoRoom checks the list at ``join`` only)."""
        for action, token in (("add", new), ("remove", old)):
            await self.request(
                {
                    "request": "allowed",
                    "room": room,
                    "secret": self.room_secret,
                    "action": action,
                    "allowed": [token],
                }
            )
        await self.request(
            {
                "request": "edit",
                "room": room,
                "secret": self.room_secret,
                "new_description": description[:120],
            }
        )

    async def set_pin(self, room: int, pin: str) -> None:
        """Give an existing room a new pin: later joins need it, present viewers stay."""
        await self.request(
            {"request": "edit", "room": room, "secret": self.room_secret, "new_pin": pin}
        )
        self.pins[room] = pin

    async def destroy_room(self, room: int) -> None:
        """Destroy a room: every participant in it is kicked, its lists go with it."""
        try:
            await self.request({"request": "destroy", "room": room, "secret": self.room_secret})
        except JanusError as exc:
            if exc.code != ERR_NO_SUCH_ROOM:
                raise
        self.pins.pop(room, None)

    async def rooms(self) -> list[int]:
        return [info.room for info in await self.room_infos()]

    async def room_infos(self) -> list[RoomInfo]:
        """Every room on the node (private ones too: the admin key asks)."""
        data = await self.request({"request": "list", "admin_key": self.node.admin_key})
        return [
            RoomInfo(
                integer(r, "room"),
                str(r.get("description", "")),
                bool(r.get("lock_record")),
                bool(r.get("pin_required")),
            )
            for r in objects(data, "list")
            if integer(r, "room") != SENTINEL_ROOM  # the control plane's own (`control_link`)
        ]
