"""The control plane as a participant of a node's rooms: who is there, what a feed sends.

A control-plane ``join`` carries the control plane's own token (in every room's
allowed list) and the room's pin if it has one, and never publishes: it reads a
publisher's streams (`feed_streams`) or stays as a silent participant whose
arrival a ``notify_joining`` publisher sees (`join_silently`, `looks`).
"""

from __future__ import annotations

from typing import NotRequired, TypedDict

from diemcau.media.control_link import ControlLink
from diemcau.media.janus import JanusHandle, integer, objects
from diemcau.records import JsonObject

__all__ = ["JoinRequests", "Participant"]

# Stream fields a remote publisher must repeat from its source: what it is
# (type, mindex, mid, codec), how it is layered, and the Opus options that set
# the subscribers' SDP (in-band FEC above all: without "fec" a relay's viewers
# are offered Opus without useinbandfec).
_STREAM_KEYS = ("type", "mindex", "mid", "codec", "simulcast", "svc", "fec", "stereo", "dtx")


class Participant(TypedDict):
    """A participant as VideoRoom's ``listparticipants`` names it."""

    id: int
    publisher: bool
    display: NotRequired[str]
    talking: NotRequired[bool]
    # A remote publisher (``add_remote_publisher``): a feed carried from another node.
    remote: NotRequired[bool]


def _participant(p: JsonObject) -> Participant:
    out = Participant(id=integer(p, "id"), publisher=bool(p.get("publisher")))
    if isinstance(display := p.get("display"), str):
        out["display"] = display
    if "talking" in p:
        out["talking"] = bool(p["talking"])
    if "remote" in p:
        out["remote"] = bool(p["remote"])
    return out


class JoinRequests(ControlLink):
    """Participants of one node's rooms, as the control plane sees and joins them."""

    def _join_secrets(self, room: int) -> dict[str, str]:
        """What a control-plane ``join`` of ``room`` carries: its token, and its pin if any."""
        fields = {"token": self.control_token(room)}
        pin = self.pins.get(room)
        if pin is not None:
            fields["pin"] = pin
        return fields

    async def participants(self, room: int) -> list[Participant]:
        data = await self.request({"request": "listparticipants", "room": room})
        return [_participant(p) for p in objects(data, "participants")]

    async def feed_streams(self, room: int, feed_id: int) -> list[JsonObject] | None:
        """The published streams of ``feed_id`` (type, mindex, mid, codec), or None.

        VideoRoom lists a publisher's streams only to participants, so we join
        for a moment as a non-publishing participant (``notify_joining`` is off,
        nobody sees it) and leave.
        """
        handle = await self._attach()
        try:
            reply = await handle.send(
                {
                    "request": "join",
                    "ptype": "publisher",
                    "room": room,
                    "display": "diemcau-control",
                    **self._join_secrets(room),
                },
                timeout=self._timeout,
            )
        finally:
            await handle.detach()
        for pub in objects(reply.data, "publishers"):
            if pub.get("id") == feed_id:
                streams: list[JsonObject] = [
                    {k: s[k] for k in _STREAM_KEYS if k in s}
                    for s in objects(pub, "streams")
                    if not s.get("disabled")
                ]
                return streams or None
        return None

    async def join_silently(self, room: int, participant_id: int, display: str) -> JanusHandle:
        """Join ``room`` as a participant that never publishes; detach the handle to leave.

        In a ``notify_joining`` room its publisher sees it come and go (`looks`).
        """
        handle = await self._attach()
        try:
            await handle.send(
                {
                    "request": "join",
                    "ptype": "publisher",
                    "room": room,
                    "id": participant_id,
                    "display": display,
                    **self._join_secrets(room),
                },
                timeout=self._timeout,
            )
        except BaseException:
            await handle.detach()
            raise
        return handle
