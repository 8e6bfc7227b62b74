"""Site sessions at national scale: presence, link health, lossless resumable delivery.

The public surface is `PresenceHub` (a thin facade over the parts its module
lists; the server's wiring builds it) and the wire protocol in
`diemcau.presence.protocol` (docs/protocol.md).
"""

from diemcau.presence.config import PresenceConfig
from diemcau.presence.health import LinkThresholds
from diemcau.presence.hub import PresenceHub
from diemcau.presence.protocol import MAX_MESSAGE_BYTES, PROTOCOL_VERSION, CloseCode
from diemcau.presence.state import PresenceChange, SiteState

__all__ = [
    "MAX_MESSAGE_BYTES",
    "PROTOCOL_VERSION",
    "CloseCode",
    "LinkThresholds",
    "PresenceChange",
    "PresenceConfig",
    "PresenceHub",
    "SiteState",
]
