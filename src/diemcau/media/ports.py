"""What the media plane needs from the rest of the server, as small typed interfaces.

The media package owns these ports; the composition root (`diemcau.wiring`) plugs the
presence hub, the command center's alerts, the meetings service and the staff
accounts into them, so
media never imports a peer service (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Protocol

from diemcau.alerting import AlertSink, Severity
from diemcau.media.node import JanusNode
from diemcau.media.turn import TurnServer

__all__ = [
    "AlertSink",
    "DeclaredNodes",
    "LiveFloors",
    "NodeSource",
    "Severity",
    "SiteNotifier",
    "StaffEpochs",
]

# Janus nodes declared by the deployment (None: a local cluster, or
# ``DIEMCAU_MEDIA_NODES``) and the TURN servers every grant names.
DeclaredNodes = tuple[Sequence[JanusNode] | None, Sequence[TurnServer]]
# Read when the plane starts (the deployment inventory, whose secrets are references).
NodeSource = Callable[[], DeclaredNodes]

# Site codes holding the floor in every live meeting (the program restore after a restart).
LiveFloors = Callable[[], Awaitable[Mapping[int, Sequence[str]]]]

# Every staff account's username → (its session epoch, whether it is disabled). The
# epoch is the token version, which moves on at each logout, password change, role
# change or disable; an account whose epoch moved has its media sessions ended.
StaffEpochs = Callable[[], Awaitable[Mapping[str, tuple[int, bool]]]]


class SiteNotifier(Protocol):
    """Tells sites something live (the presence hub's ``send``)."""

    async def send(
        self, site_ids: Collection[int], kind: str, body: Mapping[str, object], *, durable: bool
    ) -> None: ...
