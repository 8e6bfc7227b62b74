"""The live session of every connected site: at most one per site.

A site that connects again replaces its older session (closed with
``REPLACED``). The map is read on every delivery, so the fan-out and the
follow table hold the same dict (`live`) instead of asking through methods.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

from diemcau.presence.protocol import CloseCode
from diemcau.presence.session import SiteSession

__all__ = ["SessionRegistry"]


class SessionRegistry:
    """Live sessions by site id."""

    def __init__(self) -> None:
        self._live: dict[int, SiteSession] = {}

    @property
    def live(self) -> Mapping[int, SiteSession]:
        """The live map itself (not a copy): for hot paths that read it per message."""
        return self._live

    def __contains__(self, site_id: int) -> bool:
        return site_id in self._live

    def __len__(self) -> int:
        return len(self._live)

    def get(self, site_id: int) -> SiteSession | None:
        return self._live.get(site_id)

    def site_ids(self) -> set[int]:
        return set(self._live)

    def register(self, session: SiteSession) -> None:
        """Make `session` its site's live one; an older session of the site is closed."""
        sid = session.site_id
        old = self._live.get(sid)
        self._live[sid] = session
        if old is not None:
            old.close(CloseCode.REPLACED, "another session of this site connected")

    def remove(self, session: SiteSession) -> bool:
        """Forget `session` if it is still its site's live one; returns whether it was."""
        if self._live.get(session.site_id) is not session:
            return False
        del self._live[session.site_id]
        return True

    def is_live(self, session: SiteSession) -> bool:
        return self._live.get(session.site_id) is session

    def close(self, site_id: int, code: int, reason: str) -> bool:
        """Close a site's live session (if any); returns whether one was open."""
        session = self._live.get(site_id)
        if session is None:
            return False
        session.close(code, reason)
        return True

    def close_where(
        self,
        site_ids: Collection[int],
        stale: Callable[[SiteSession], bool],
        code: int,
        reason: str,
    ) -> list[int]:
        """Close the live sessions of `site_ids` for which `stale` holds; their ids."""
        closed = []
        for sid in site_ids:
            session = self._live.get(sid)
            if session is not None and stale(session):
                session.close(code, reason)
                closed.append(sid)
        return closed

    def close_all(self, code: int, reason: str) -> None:
        for session in list(self._live.values()):
            session.close(code, reason)
