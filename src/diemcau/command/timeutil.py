"""Time helpers: the injected clock as aware UTC datetimes, and SQLite's naive reads.

SQLite hands ``DateTime(timezone=True)`` columns back without a zone; every
comparison in the command center goes through `aware` so the same code is
right on PostgreSQL and SQLite.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["Clock", "aware", "aware_or_none", "now_from"]

Clock = Callable[[], float]


def now_from(clock: Clock) -> datetime:
    return datetime.fromtimestamp(clock(), UTC)


def aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def aware_or_none(value: datetime | None) -> datetime | None:
    return aware(value) if value is not None else None
