"""The last moment this server was known to run its meetings, kept in the store.

After a crash (``kill -9``, a host lost) nobody closed the presence intervals of the
sites that were in a meeting. Closing them at the next start would claim those sites
present for the whole outage; closing them at this mark, written every `every_s`
seconds while any site is present in a meeting, shows the gap as it was, to within
`every_s` (docs/meetings.md "Restarts", docs/reliability.md). With nobody present
there is nothing to close after a crash, and nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from diemcau.store import Database, SettingValue
from diemcau.tasks import Periodic

__all__ = ["ALIVE_KEY", "AliveMark"]

ALIVE_KEY = "meetings.alive_at"


class AliveMark:
    """Writes "still running at <time>" to the store every `every_s` seconds.

    Args:
        db: the store.
        now: the meetings' clock (aware UTC datetimes).
        wanted: whether a mark is needed now (some site present in a meeting).
        every_s: how often the mark is written (the precision of a crash's gap).
    """

    def __init__(
        self,
        db: Database,
        now: Callable[[], datetime],
        wanted: Callable[[], bool],
        every_s: float = 2.0,
    ) -> None:
        self.db = db
        self.now = now
        self.wanted = wanted
        self.every_s = every_s
        self._loop = Periodic(
            "meetings-alive", every_s, self._step, what="the meetings' alive mark", first=0
        )

    async def last(self) -> datetime | None:
        """The mark left by the previous run (None: never written or unreadable)."""
        async with self.db.session() as s:
            row = await s.get(SettingValue, ALIVE_KEY)
        if row is None:
            return None
        try:
            return datetime.fromisoformat(row.value)
        except ValueError:
            return None

    async def write(self) -> None:
        """Write the mark now."""
        at = self.now().isoformat()
        async with self.db.session() as s:
            row = await s.get(SettingValue, ALIVE_KEY)
            if row is None:
                s.add(SettingValue(key=ALIVE_KEY, value=at))
            else:
                row.value = at

    async def _step(self) -> None:
        if self.wanted():
            await self.write()

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
