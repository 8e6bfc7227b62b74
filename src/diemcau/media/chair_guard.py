"""Taking the chair feed back from people who may no longer publish it.

Everyone who runs a meeting (its chair, its delegates, admins) publishes the chair
feed with one publish token, the one in the chair room's allowed list. When a live
meeting loses a delegate, `chair_lost` takes that right back at central, at once:

- the chair room's list gets a new token (a new generation, `rights.Holder.chair`)
  and loses the old one, and the room's description names the generation, so a
  restarted control plane keeps the old token dead (`rooms.chair_generation`);
  whoever publishes now keeps publishing (VideoRoom checks the list at ``join``
  only), and the chair's and remaining delegates' consoles get the new token with
  their next grant;
- central's program room gets a new pin (the removed delegate's room token no longer
  lets it watch the program; connected viewers stay);
- every Janus session at central with a handle in the meeting's chair or program
  room attached by a removed person's core token is ended (`revoke.end_sessions`),
  so a removed delegate publishing as the chair is cut off now, and the chair room
  is free for the chair's console.

docs/media.md, "Who may publish and watch".
"""

from __future__ import annotations

from collections.abc import Collection

from diemcau.media.revoke import SweepReport, end_sessions
from diemcau.media.rights import Holder, new_pin, publish_token
from diemcau.media.rooms import RoomSpec
from diemcau.media.state import PlaneState
from diemcau.records import JsonObject

__all__ = ["chair_lost"]


async def chair_lost(
    state: PlaneState, meeting_id: str | int, usernames: Collection[str]
) -> SweepReport | None:
    """Staff ``usernames`` may no longer run the live meeting: take the chair feed back.

    Returns the sweep of central, or None when no program of that meeting runs, or
    nobody lost the right. Raises what central's connection raises (not answering).
    """
    key = str(meeting_id)
    m = state.meetings.get(key)
    if m is None or not usernames:
        return None
    central = state.central
    ctl = state.control(central.name)
    async with state.lock:
        if m.chair_room in state.rooms.get(central.name, ()):
            old = Holder.chair(key, m.chair_generation)
            new_generation = m.chair_generation + 1
            spec = RoomSpec("chair", key, new_generation)
            await ctl.replace_allowed(
                m.chair_room,
                publish_token(central, m.chair_room, old),
                publish_token(central, m.chair_room, Holder.chair(key, new_generation)),
                spec.description,
            )
            m.chair_generation = new_generation
        else:  # made later (a node restarted), with the generation wanted then
            m.chair_generation += 1
        if m.room in state.rooms.get(central.name, ()):
            await ctl.set_pin(m.room, new_pin())
    holders = {Holder.staff(u) for u in usernames}
    rooms = {m.chair_room, m.room}

    def in_meeting(place: JsonObject) -> bool:
        return place.get("room") in rooms

    return await end_sessions(central, holders.__contains__, where=in_meeting)
