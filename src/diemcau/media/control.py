"""The control plane's hand on one node's VideoRoom: `NodeControl`, one per node.

`NodeControl` is one `control_link.ControlLink` (one API connection, session
and VideoRoom handle, reconnecting when the node comes back and noticing a
restart by its sentinel room) with every request group the control plane sends
over it: rooms and their options (`room_requests`), the control plane as a
participant (`join_requests`), remote publishers and what feeds them
(`remote_requests`), recording (`record_requests`). Callers hold one object per
node and ask it for any of these. The error codes and the sentinel room are
`control_link`'s, imported from there.

Janus VideoRoom API: https://janus.conf.meetecho.com/docs/videoroom.html
"""

from __future__ import annotations

from diemcau.media.join_requests import JoinRequests
from diemcau.media.record_requests import RecordRequests
from diemcau.media.remote_requests import Forwarder, RemoteRequests, forward_streams
from diemcau.media.room_requests import RoomInfo, RoomRequests

__all__ = ["Forwarder", "NodeControl", "RoomInfo", "forward_streams"]


class NodeControl(RoomRequests, JoinRequests, RemoteRequests, RecordRequests):
    """Synchronous VideoRoom requests against one node, as the control plane.

    Built like `control_link.ControlLink` (``node``, ``timeout``, ``on_restart``).
    """
