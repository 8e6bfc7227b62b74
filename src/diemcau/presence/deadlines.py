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
from collections.abc import Callable, Collection, Mapping

from diemcau.presence.protocol import CloseCode
from diemcau.presence.session import SiteSession

__all__ = ["SilenceWatch"]


class SilenceWatch:
    """Closes silent sessions with ``HEARTBEAT_TIMEOUT``; call `sweep` every `sweep_s`.

    Args:
        live: the live sessions by site id.
        offline_after_s: the longest silence any session is allowed (how far back a
            stall of the server's own loop is remembered).
        sweep_s: the period `sweep` is called at (a longer gap is a loop stall).
        windows: every `SiteSession.offline_after_s` in use (one per protocol
            timing); a session's allowance is the worst stall within its own window.
        monotonic: the clock `SiteSession.last_seen` is read from.
    """

    def __init__(
        self,
        live: Mapping[int, SiteSession],
        offline_after_s: float,
        sweep_s: float,
        windows: Collection[float] = (),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._live = live
        self.offline_after_s = offline_after_s
        self.windows = tuple(sorted(set(windows) | {offline_after_s}))
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

    def allowance_within(self, now: float, window: float) -> float:
        """The worst stall recorded within the last `window` seconds (after `allowance`)."""
        return max((lag for at, lag in self._stalls if at >= now - window), default=0.0)

    async def sweep(self) -> None:
        """Close every session whose last inbound frame is older than its deadline.

        Each session has its own allowed silence (`SiteSession.offline_after_s`,
        set by its protocol version); one pass over the live map is cheaper than
        keeping per-heartbeat deadline buckets (docs/performance.md).
        """
        now = self._monotonic()
        longest = now - self.offline_after_s - self.allowance(now)
        # The last inbound frame must be after this, per allowed silence.
        oldest = {w: now - w - self.allowance_within(now, w) for w in self.windows}
        for session in [
            s for s in self._live.values() if s.last_seen < oldest.get(s.offline_after_s, longest)
        ]:
            session.close(CloseCode.HEARTBEAT_TIMEOUT, "no heartbeat")
