"""Site sessions at national scale: presence, link health, lossless resumable delivery.

The public surface is `PresenceHub` (attached as ``runtime.services["presence"]``)
and the wire protocol in `diemcau.presence.protocol` (docs/protocol.md).
"""

from diemcau.presence.health import LinkThresholds
from diemcau.presence.hub import (
    PresenceChange,
    PresenceConfig,
    PresenceHub,
    SiteState,
)
from diemcau.presence.protocol import MAX_MESSAGE_BYTES, PROTOCOL_VERSION, CloseCode
from diemcau.presence.ratelimit import RateLimiter

__all__ = [
    "MAX_MESSAGE_BYTES",
    "PROTOCOL_VERSION",
    "CloseCode",
    "LinkThresholds",
    "PresenceChange",
    "PresenceConfig",
    "PresenceHub",
    "RateLimiter",
    "SiteState",
]
