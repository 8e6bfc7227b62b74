"""A short-lived cache of the account state `check_session_token` confirms with the store.

Every authenticated request re-checks its token against the store, so that a
revoked site or a disabled account is refused (docs/provisioning.md). With thousands of
sites calling at once that is one query a request (1,000 concurrent checks took
1.7–20 s on PostgreSQL), while the state it reads — a site's credential version
and revoked flag, a staff account's disabled flag, role and province — changes
rarely. This cache keeps that state for `TTL_S` seconds:

- writes made through `diemcau.accounts.service` (rotate, revoke, disable,
  enable: `site_credentials`, `staff`) and the bulk provisioner forget the
  cached state at once, in this process;
- any other write (another process, a hand-made SQL update) is seen within
  `TTL_S`: a site revoked there is refused at most that long afterwards.

A read that started before a write finished must not store the old state
after the write forgot it; a generation counter, bumped by every forget, makes
such a late store a no-op.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

__all__ = ["TTL_S", "AccountStateCache", "state_cache", "forget_sites", "forget_staff"]

# How long a confirmed state is trusted (seconds).
TTL_S = 5.0
# Entries kept per database before the cache starts over (bounds memory).
MAX_ENTRIES = 200_000

Key = tuple[str, int]


class AccountStateCache:
    """(kind, id) -> (expiry, state), for one database."""

    def __init__(self, ttl_s: float = TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self.generation = 0
        self._entries: dict[Key, tuple[float, Hashable]] = {}

    def get(self, kind: str, ident: int) -> Hashable | None:
        """The cached state, or None if absent or older than the TTL."""
        hit = self._entries.get((kind, ident))
        if hit is None:
            return None
        if self.clock() >= hit[0]:
            self._entries.pop((kind, ident), None)
            return None
        return hit[1]

    def put(self, kind: str, ident: int, state: Hashable, generation: int) -> None:
        """Store `state` read under `generation`; ignored if a forget happened since."""
        if generation != self.generation:
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[(kind, ident)] = (self.clock() + self.ttl_s, state)

    def forget(self, kind: str) -> None:
        """Drop every entry of `kind` ("site" or "staff")."""
        self.generation += 1
        self._entries = {k: v for k, v in self._entries.items() if k[0] != kind}


# One cache per database URL, so two `Database` objects on one store share it.
_caches: dict[str, AccountStateCache] = {}


def state_cache(url: str) -> AccountStateCache:
    cache = _caches.get(url)
    if cache is None:
        cache = _caches[url] = AccountStateCache()
    return cache


def forget_sites(url: str) -> None:
    """A site's credential changed: confirm every site token with the store again."""
    state_cache(url).forget("site")


def forget_staff(url: str) -> None:
    """A staff account changed: confirm every staff token with the store again."""
    state_cache(url).forget("staff")
