"""Failed staff logins are throttled per (username, client address).

argon2 already makes each guess slow; this caps how many guesses one source can
make against one account: `burst` failures at once, then one more every
`1 / rate` seconds. Only failures spend tokens, so a user who types the right
password is never slowed. Sites log in with 160-bit secrets (no guessing), so
site logins are not throttled here.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

from diemcau.errors import DomainError
from diemcau.presence.ratelimit import RateLimiter

__all__ = ["LoginThrottle", "TooManyAttempts"]


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
