"""Heartbeat deadlines: a session silent for longer than `offline_after_s` is cut.

When the event loop itself was stalled (a join storm, a busy machine),
heartbeats wait unread in the sockets and look late through no fault of the
sites: the stall seen over the last `offline_after_s` is added to the allowance,
so the server never mass-disconnects healthy sites because it was slow itself
(docs/protocol.md, ``hb``).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping

from diemcau.presence.protocol import CloseCode
from diemcau.presence.session import SiteSession

__all__ = ["SilenceWatch"]


class SilenceWatch:
    """Closes silent sessions with ``HEARTBEAT_TIMEOUT``; call `sweep` every `sweep_s`.

    Args:
        live: the live sessions by site id.
        offline_after_s: silence allowed before a site counts as gone.
        sweep_s: the period `sweep` is called at (a longer gap is a loop stall).
        monotonic: the clock `SiteSession.last_seen` is read from.
    """

    def __init__(
        self,
        live: Mapping[int, SiteSession],
        offline_after_s: float,
        sweep_s: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._live = live
        self.offline_after_s = offline_after_s
        self.sweep_s = sweep_s
        self._monotonic = monotonic
        self._last_sweep = 0.0
        # (when, how late that sweep ran) over the last `offline_after_s`.
        self._stalls: deque[tuple[float, float]] = deque()

    def allowance(self, now: float) -> float:
        """Record this sweep's lateness; the worst stall seen within `offline_after_s`."""
        stall = 0.0
        if self._last_sweep:
            stall = max(0.0, now - self._last_sweep - self.sweep_s)
        self._last_sweep = now
        self._stalls.append((now, stall))
        while self._stalls and self._stalls[0][0] < now - self.offline_after_s:
            self._stalls.popleft()
        return max(lag for _, lag in self._stalls)

    async def sweep(self) -> None:
        """Close every session whose last inbound frame is older than the deadline."""
        now = self._monotonic()
        deadline = now - self.offline_after_s - self.allowance(now)
        for session in [s for s in self._live.values() if s.last_seen < deadline]:
            session.close(CloseCode.HEARTBEAT_TIMEOUT, "no heartbeat")
