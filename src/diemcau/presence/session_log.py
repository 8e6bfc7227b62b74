"""The session log: presence transitions buffered in memory, stored in batches.

A national join is 3,355-10,795 transitions within seconds; one transaction per
transition would queue them all on the store. Transitions are kept in a buffer
and written every `persist_interval_s` in one Core bulk insert (the ORM bulk
path costs ~10x more per row, and this runs on the event loop). If the store
refuses them, they wait for the next flush, up to a bound.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TypedDict

from sqlalchemy import insert

from diemcau.presence.models import EVENTS_TABLE
from diemcau.presence.protocol import LinkReport
from diemcau.store import Database

__all__ = ["SessionLog", "BACKLOG_MAX"]

log = logging.getLogger(__name__)

# Transitions kept in memory while the store refuses them (~40 per site of vn-legacy).
BACKLOG_MAX = 500_000


class _Transition(TypedDict):
    """One ``presence_events`` row."""

    site_id: int
    state: str
    reason: str
    at: datetime
    rtt_ms: float | None
    loss_pct: float | None
    jitter_ms: float | None


class SessionLog:
    """Buffered writer of presence transitions to ``presence_events``.

    Args:
        db: the store.
        known: whether a site id still exists (a transition of a site deleted
            meanwhile would break the foreign key, so it is dropped).
    """

    def __init__(self, db: Database, known: Callable[[int], bool]) -> None:
        self.db = db
        self._known = known
        self._rows: list[_Transition] = []

    def __len__(self) -> int:
        return len(self._rows)

    def record(
        self, site_id: int, state: str, reason: str, at: datetime, link: LinkReport | None
    ) -> None:
        """Buffer one transition (written at the next `flush`)."""
        self._rows.append(
            {
                "site_id": site_id,
                "state": state,
                "reason": reason[:64],
                "at": at,
                "rtt_ms": link.rtt_ms if link else None,
                "loss_pct": link.loss_pct if link else None,
                "jitter_ms": link.jitter_ms if link else None,
            }
        )

    async def flush(self) -> None:
        """Write the buffered transitions in one transaction; keep them if that fails."""
        if not self._rows:
            return
        rows, self._rows = self._rows, []
        known = self._known
        rows = [r for r in rows if known(r["site_id"])]
        if not rows:
            return
        try:
            async with self.db.session() as s:
                await s.execute(insert(EVENTS_TABLE), rows)
        except Exception:
            # The caller logs why (one line while the store is out of reach).
            log.warning("%d presence transitions kept to be written again", len(rows))
            self._rows[:0] = rows
            if len(self._rows) > BACKLOG_MAX:  # the store is down for long: bound it
                dropped = len(self._rows) - BACKLOG_MAX
                del self._rows[:dropped]
                log.error("dropped %d presence transitions the store could not take", dropped)
            raise
