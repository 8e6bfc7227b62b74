"""Who is looking at each site right now, as the site is told it (``inspect.watch``).

A site publishes outside a meeting only while someone looks: an open inspection or a
page of the video wall. The site is always told the whole picture, never a delta: who
looks, since when, whether one of them is calling it. A full state is idempotent, so a
site that reconnects asks for it again (``inspect.state``) and a message that crossed
the answer to that question is recognised by its version (docs/protocol.md).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from diemcau.records import JsonObject

__all__ = ["WATCH_KIND", "Looker", "WatchBoard"]

# The control message carrying a site's watch state (server → site, live only).
WATCH_KIND = "inspect.watch"

LookerKind = Literal["inspection", "wall"]


@dataclass(frozen=True)
class Looker:
    """One look at a site: an inspection (by its id) or a wall page (by its lease id)."""

    kind: LookerKind
    key: str
    by: str  # the inspector's display name (or username)
    role: str
    since: datetime
    call: bool = False
    inspection_id: int | None = None

    def as_dict(self) -> JsonObject:
        return {
            "kind": self.kind,
            "id": self.inspection_id,
            "by": self.by,
            "role": self.role,
            "since": self.since.isoformat(),
            "call": self.call,
        }


class WatchBoard:
    """The lookers of every site.

    Every body gets a fresh version when it is built: the one built later says the
    more recent truth. Versions start from the clock in milliseconds, so they keep
    growing across restarts and a site can drop any state older than the one it shows.
    """

    def __init__(self, start_ms: int) -> None:
        self._lookers: dict[int, dict[str, Looker]] = {}
        self._versions = itertools.count(start_ms)

    def put(self, site_id: int, looker: Looker) -> None:
        """Add or replace a look (same kind and key) at a site."""
        self._lookers.setdefault(site_id, {})[f"{looker.kind}:{looker.key}"] = looker

    def drop(self, site_id: int, kind: LookerKind, key: str) -> bool:
        """Remove one look; returns whether it was there."""
        mine = self._lookers.get(site_id)
        if mine is None or mine.pop(f"{kind}:{key}", None) is None:
            return False
        if not mine:
            del self._lookers[site_id]
        return True

    def lookers(self, site_id: int) -> list[Looker]:
        return sorted(self._lookers.get(site_id, {}).values(), key=lambda lk: lk.since)

    def watched(self) -> set[int]:
        return set(self._lookers)

    def body(self, site_id: int) -> JsonObject:
        """The ``inspect.watch`` body for a site: publish or not, who looks, any call."""
        lookers = self.lookers(site_id)
        call = next((lk for lk in lookers if lk.call), None)
        return {
            "version": next(self._versions),
            "publish": bool(lookers),
            "watchers": [lk.as_dict() for lk in lookers],
            "call": None if call is None else {"inspection_id": call.inspection_id},
        }
