"""Rate limiting with token buckets: inbound site messages and failed staff logins.

`RateLimiter` is one token bucket. Each site session owns one: a site may send
`rate` messages per second on average and bursts of up to `burst`; one more closes
that session (floods never reach the services). Heartbeats count too: at one a
second a well-behaved site uses a small part of it.

`LoginThrottle` keeps one bucket per (username, client address) of failed staff
logins. argon2 already makes each guess slow; this caps how many guesses one source
can make against one account: `burst` failures at once, then one more every
`1 / rate` seconds. Only failures spend tokens, so a user who types the right
password is never slowed. Sites log in with 160-bit secrets (no guessing), so site
logins are not throttled.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

from diemcau.errors import DomainError

__all__ = ["LoginThrottle", "RateLimiter", "TooManyAttempts"]


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


class TooManyAttempts(DomainError):
    status = 429
    code = "rate_limited"


class LoginThrottle:
    """Token buckets of failed logins, the least recently used dropped past `max_keys`."""

    def __init__(
        self,
        *,
        burst: int = 5,
        rate: float = 1 / 30,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst = burst
        self.rate = rate
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[tuple[str, str], RateLimiter] = OrderedDict()

    def check(self, username: str, client: str) -> None:
        """Raise `TooManyAttempts` if this source spent its failed attempts on this account."""
        bucket = self._buckets.get((username.lower(), client))
        if bucket is None:
            return
        available = bucket.tokens(self.clock())
        if available < 1:
            wait = math.ceil((1 - available) / self.rate)
            raise TooManyAttempts(f"too many failed logins for '{username}'; try again in {wait} s")

    def failed(self, username: str, client: str) -> None:
        key = (username.lower(), client)
        now = self.clock()
        bucket = self._buckets.pop(key, None) or RateLimiter(self.rate, self.burst, now)
        bucket.allow(now)
        self._buckets[key] = bucket
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
