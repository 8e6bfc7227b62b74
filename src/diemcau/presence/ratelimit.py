"""A token-bucket rate limiter for inbound site messages.

Each session owns one. A site may send `rate` messages per second on average
and bursts of up to `burst`; one more closes that session with
``CloseCode.RATE_LIMITED`` (floods never reach the services). Heartbeats count
too: at 1 heartbeat a second a well-behaved site uses a small part of it.
"""

from __future__ import annotations

__all__ = ["RateLimiter"]


class RateLimiter:
    """Token bucket: `rate` tokens per second, at most `burst` stored.

    Args:
        rate: sustained messages per second.
        burst: messages allowed at once after a quiet period.
        now: the current monotonic time (tests pass a fake clock's value).
    """

    __slots__ = ("rate", "burst", "_tokens", "_last")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._last = now

    def tokens(self, now: float) -> float:
        """The tokens available at `now` (refilled for the time elapsed)."""
        elapsed = now - self._last
        if elapsed > 0:
            self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
            self._last = now
        return self._tokens

    def allow(self, now: float, cost: float = 1.0) -> bool:
        """Take `cost` tokens if there are enough; False means: over the limit."""
        # `tokens` inlined: called for every inbound message of every site.
        tokens = self._tokens
        elapsed = now - self._last
        if elapsed > 0:
            tokens = min(self.burst, tokens + elapsed * self.rate)
            self._last = now
        if tokens >= cost:
            self._tokens = tokens - cost
            return True
        self._tokens = tokens
        return False
