"""Rate limiting with token buckets: inbound site messages and failed staff logins.

`RateLimiter` is one token bucket. Each site session owns one: a site may send
`rate` messages per second on average and bursts of up to `burst`; one more closes
that session (floods never reach the services). Heartbeats count too: at one a
second a well-behaved site uses a small part of it.

`LoginThrottle` slows guessing of staff passwords with an exponential backoff per
account, without letting an attacker lock the account's owner out (its docstring
says how; docs/security.md, "Login abuse", says why). Sites log in with 160-bit
secrets (no guessing), so site logins are not throttled.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from diemcau.errors import DomainError

__all__ = ["LoginThrottle", "LoginTicket", "RateLimiter", "TooManyAttempts"]


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

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = max(1, math.ceil(retry_after_s))


@dataclass
class _Lane:
    """Attempts on one account through one lane: failures, in flight, the last start."""

    failures: int = 0
    pending: int = 0
    last: float = -math.inf


class LoginTicket:
    """One reserved password check; tell the throttle how it ended (exactly once)."""

    __slots__ = ("_lanes", "_resets", "_done")

    def __init__(self, lanes: list[_Lane], resets: list[_Lane]) -> None:
        self._lanes = lanes
        self._resets = resets  # the lanes a success empties (never an address's)
        self._done = False

    def _end(self) -> bool:
        if self._done:
            return False
        self._done = True
        for lane in self._lanes:
            lane.pending -= 1
        return True

    def failed(self) -> None:
        """A wrong password (or unknown user): the attempt counts."""
        if self._end():
            for lane in self._lanes:
                lane.failures += 1

    def succeeded(self) -> None:
        """The right password: this client's lanes start over."""
        if self._end():
            for lane in self._resets:
                lane.failures = 0
                lane.last = -math.inf

    def cancelled(self) -> None:
        """Nothing was checked (the server was busy): the attempt does not count."""
        self._end()


class LoginThrottle:
    """Staff login attempts, throttled so guessing is slow and nobody else is locked out.

    Every attempt is reserved before its password is checked (`begin`, no await in
    between), so N requests sent at once get no more checks than one after another.
    Attempts go through lanes; the k-th attempt of a lane (failures plus attempts in
    flight) may start `delay(k)` after the lane's previous start: no delay for the
    first `free`, then `base_s` doubling up to `max_delay_s`. A success empties the
    account's lane it went through (an address's lane is not emptied by a success: an
    insider's own good logins must not reset a spraying address). Each lane forgets
    one failure per `forgive_s` of quiet, so an office whose staff mistyped now and
    then is never slowed for good, while a guesser gains at most one guess per
    `forgive_s` in the long run.

    - A **known client** — one that shows a device token issued to it at an earlier
      successful login of this account (docs/security.md, "Login abuse") — has a lane
      of its own for that account. Nobody else's failures touch it, so an attacker
      guessing the account never locks its owner out of an office PC they used before.
    - Every other attempt goes through the account's **unfamiliar-client lane**,
      whatever its address (guessing from many addresses is no faster), and the
      address's lane across accounts (password spraying from one address is
      capped too). While that lane waits, even the right password is refused
      without being checked: a lock-out cannot be bypassed by guessing right.

    Args:
        free: attempts a lane may make without delay.
        base_s, max_delay_s: the first delay after those, and its cap.
        address_free: attempts an address may make on unfamiliar lanes without delay.
        forgive_s: quiet time after which a lane forgets one failure.
        max_lanes: lanes kept (least recently used dropped past it).
        clock: monotonic seconds (tests pass a fake one).
    """

    def __init__(
        self,
        *,
        free: int = 5,
        base_s: float = 1.0,
        max_delay_s: float = 900.0,
        address_free: int = 30,
        forgive_s: float = 600.0,
        max_lanes: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free = free
        self.base_s = base_s
        self.max_delay_s = max_delay_s
        self.address_free = address_free
        self.forgive_s = forgive_s
        self.max_lanes = max_lanes
        self.clock = clock
        self._lanes: OrderedDict[tuple[str, ...], _Lane] = OrderedDict()

    def delay(self, k: int, free: int | None = None) -> float:
        """How long the k-th attempt (0-based) of a lane waits after the previous one."""
        allowed = self.free if free is None else free
        if k < allowed:
            return 0.0
        return min(self.max_delay_s, self.base_s * 2.0 ** min(k - allowed, 32))

    def _lane(self, key: tuple[str, ...]) -> _Lane:
        lane = self._lanes.pop(key, None) or _Lane()
        self._lanes[key] = lane
        while len(self._lanes) > self.max_lanes:
            oldest, old = next(iter(self._lanes.items()))
            if old.pending:  # never drop a lane with a check in flight
                self._lanes.move_to_end(oldest)
                break
            self._lanes.popitem(last=False)
        return lane

    def begin(self, username: str, client: str, device: str | None = None) -> LoginTicket:
        """Reserve one password check, or raise `TooManyAttempts` (nothing reserved).

        Args:
            username: the account tried (unknown accounts are throttled the same way).
            client: the client's address.
            device: the device id of a valid device token issued for this account.
        """
        name = username.lower()
        now = self.clock()
        if device is not None:
            lanes = [(self._lane(("device", name, device)), self.free)]
        else:
            lanes = [
                (self._lane(("account", name)), self.free),
                (self._lane(("address", client)), self.address_free),
            ]
        wait = 0.0
        for lane, free in lanes:
            if lane.failures and not lane.pending and math.isfinite(lane.last):
                lane.failures = max(0, lane.failures - int((now - lane.last) // self.forgive_s))
            wait = max(wait, lane.last + self.delay(lane.failures + lane.pending, free) - now)
        if wait > 0:
            raise TooManyAttempts(
                f"too many failed logins for '{username}'; try again in {math.ceil(wait)} s",
                retry_after_s=wait,
            )
        for lane, _ in lanes:
            lane.pending += 1
            lane.last = now
        return LoginTicket([lane for lane, _ in lanes], [lanes[0][0]])
