"""What each kind of room is for, and the one place a room is made with who may publish in it.

Four kinds (docs/media.md): a meeting's **program** room on every node (remote
publishers only, a pin every viewer shows), its **chair** room at central (the
chair feed's publish token), its **inspect** room at central while a spot-check
is recorded (remote publishers only, nobody watches), a site's **uplink** room on
its relay (the site's publish token for its credential version). `make_room` turns a `RoomSpec` into
`NodeControl.ensure_room` arguments; the room's options themselves
(``lock_record``, ``rec_dir``, the control plane's own token) are set there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from diemcau.media.control import NodeControl
from diemcau.media.rights import Holder, new_pin, publish_token
from diemcau.media.room_requests import RoomInfo

__all__ = ["RoomKind", "RoomSpec", "allowed_tokens", "chair_generation", "is_stale", "make_room"]

RoomKind = Literal["program", "chair", "inspect", "uplink"]


@dataclass(frozen=True)
class RoomSpec:
    """What a room is for, and so who may publish in it.

    ``credential`` (uplink rooms) is the site credential version whose publish
    token the room's allowed list holds, None for none; (chair rooms) the
    generation of the chair feed's publish token (`rights.Holder.chair`, None or 0
    for the first). The description names it, so a restarted control plane tells
    a room made for an older credential and learns a chair room's generation
    (`chair_generation`).
    """

    kind: RoomKind
    key: str
    credential: int | None = None

    @property
    def description(self) -> str:
        if self.kind == "chair" and self.credential:
            return f"chair {self.key} g{self.credential}"
        if self.kind != "uplink":
            return f"{self.kind} {self.key}"
        cred = "-" if self.credential is None else f"v{self.credential}"
        return f"uplink {self.key} {cred}"

    @property
    def publisher(self) -> str | None:
        """The holder whose publish token the room admits (None: nobody but the control)."""
        if self.kind == "chair":
            return Holder.chair(self.key, self.credential or 0)
        if self.kind == "uplink" and self.credential is not None:
            return Holder.site(self.key, self.credential)
        return None


async def make_room(ctl: NodeControl, room: int, spec: RoomSpec) -> None:
    """Create the room unless it exists, with its publisher and, for a program room, a pin.

    A room found made already (by an earlier control plane, or before a relay's
    connection blinked) is checked: a program room gets a new pin (its old one is
    not known here); a room whose allowed list is not exactly the one wanted (made
    for another credential) is destroyed and made again.
    """
    if spec.kind == "program":
        made = await ctl.ensure_room(room, spec.description, pin=new_pin())
        if not made and room not in ctl.pins:
            await ctl.set_pin(room, new_pin())
        return
    allowed = allowed_tokens(ctl, room, spec)
    publishers = 1 if spec.kind in ("chair", "uplink") else 6
    # A site's browser is told who joins its uplink room: how it learns it is looked at.
    notify = spec.kind == "uplink"

    async def ensure() -> bool:
        return await ctl.ensure_room(
            room, spec.description, publishers=publishers, allowed=allowed, notify_joining=notify
        )

    if await ensure():
        return
    if await ctl.allowed(room) != {ctl.control_token(room), *allowed}:
        await ctl.destroy_room(room)
        await ensure()


def allowed_tokens(ctl: NodeControl, room: int, spec: RoomSpec) -> list[str]:
    """The publish tokens a room's allowed list holds besides the control plane's own."""
    holder = spec.publisher
    return [publish_token(ctl.node, room, holder)] if holder is not None else []


async def is_stale(ctl: NodeControl, info: RoomInfo, spec: RoomSpec) -> bool:
    """Whether a room found on a node was made with other rights than ``spec`` wants.

    Made by an older control plane (no ``lock_record``, a program room without a
    pin), for another credential (an uplink's description), or with another allowed
    list (a chair or inspect room, asked: one request, a few rooms). Uplink rooms
    are told by their description alone: there is one per site.
    """
    if not info.lock_record or info.description != spec.description:
        return True
    if spec.kind == "program":
        return not info.pin_required
    if spec.kind == "uplink":
        return False
    return await ctl.allowed(room=info.room) != {
        ctl.control_token(info.room),
        *allowed_tokens(ctl, info.room, spec),
    }


def chair_generation(description: str, meeting_id: str) -> int | None:
    """The publish-token generation a chair room of ``meeting_id`` was given, read from
    its description (`RoomSpec.description`); None when it is not that meeting's chair
    room. How a restarted control plane keeps a token a removed delegate held dead."""
    base = f"chair {meeting_id}"
    if description == base:
        return 0
    tail = description.removeprefix(base + " g")
    if tail != description and tail.isdigit():
        return int(tail)
    return None
