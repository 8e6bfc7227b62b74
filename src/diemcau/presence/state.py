"""Each site's presence (online, degraded, offline) as it changes, told to every listener.

Presence lives in memory: the tracker holds the current `SiteState` of every site
seen since start. A transition is recorded in the session log, marks the site's
row for the staff stream and is given to every listener (meetings' attendance,
the command center's rules ...). Async listeners run as tasks, so a slow one
never holds up a join; they may therefore see transitions out of order and
should read the tracker's current state rather than trust the event alone.
At most `LISTENER_CONCURRENCY` calls of one listener run at once, and a stop
lets the running ones finish instead of cancelling them (`drain_listeners`).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal

from diemcau.directory.sites import SiteInfo
from diemcau.presence.health import LinkThresholds
from diemcau.presence.protocol import LinkReport
from diemcau.presence.session_log import SessionLog
from diemcau.tasks import cancel_and_wait

__all__ = [
    "LISTENER_CONCURRENCY",
    "PresenceChange",
    "PresenceListener",
    "PresenceTracker",
    "SiteState",
    "StateName",
]

log = logging.getLogger(__name__)

StateName = Literal["online", "degraded", "offline"]
# Calls of one async listener running at once; the others wait their turn, in order.
# A mass drop or reconnect is thousands of transitions within a second: started all at
# once, a listener that touches the store per transition took every pooled connection
# for tens of seconds (checkouts timed out after 30 s, SQLite answered "database is
# locked"), and every other store user (attendance, the session log) failed with it.
# Below the SQLite pool's 15 connections, so one listener never holds them all.
LISTENER_CONCURRENCY = 8


@dataclass(frozen=True, slots=True)
class SiteState:
    """A site's presence as the hub knows it now.

    Attributes:
        state: ``online``, ``degraded`` (link below thresholds) or ``offline``.
        reason: why (``joined``, ``loss 7.5% > 5%``, ``heartbeat_timeout`` ...).
        since: when the site entered `state` (UTC).
        link: the latest link report, if any.
    """

    site_id: int
    state: StateName
    reason: str
    since: datetime
    link: LinkReport | None = None
    province_id: int | None = None


@dataclass(frozen=True, slots=True)
class PresenceChange:
    """One presence transition, given to every listener."""

    site_id: int
    old: StateName
    new: StateName
    reason: str
    at: datetime
    province_id: int | None = None


PresenceListener = Callable[[PresenceChange], Awaitable[None] | None]


class PresenceTracker:
    """The current state of every site; transitions go to the log, staff and listeners.

    Args:
        clock: wall clock in seconds (times shown and stored).
        thresholds: link-health limits for ``degraded``.
        site_info: the directory's record of a site (its province), None if unknown.
        session_log: where transitions are recorded.
        touched: called with a site id whenever its shown row changed (staff stream).
    """

    def __init__(
        self,
        clock: Callable[[], float],
        thresholds: LinkThresholds,
        site_info: Callable[[int], SiteInfo | None],
        session_log: SessionLog,
        touched: Callable[[int], None],
    ) -> None:
        self.clock = clock
        self.thresholds = thresholds
        self._site_info = site_info
        self._log = session_log
        self._touched = touched
        self._states: dict[int, SiteState] = {}
        self._listeners: list[tuple[PresenceListener, asyncio.Semaphore]] = []
        self._callbacks: set[asyncio.Task[None]] = set()
        # False from the hub's stop on: listener calls not started yet are dropped.
        self.listening = True
        self.started_at = datetime.fromtimestamp(clock(), UTC)

    def restart(self) -> None:
        """Mark the start of this run (``not_connected`` sites are offline since then)."""
        self.started_at = datetime.fromtimestamp(self.clock(), UTC)
        self.listening = True

    def site_state(self, site_id: int) -> SiteState:
        """The site's state now (``offline``/``not_connected`` if not seen since start)."""
        state = self._states.get(site_id)
        if state is not None:
            return state
        info = self._site_info(site_id)
        return SiteState(
            site_id,
            "offline",
            "not_connected",
            self.started_at,
            province_id=info.province_id if info else None,
        )

    def add_listener(self, callback: PresenceListener) -> None:
        """Call `callback` on every presence transition (sync or async).

        A sync callback runs inline. An async one runs as a task, at most
        `LISTENER_CONCURRENCY` of its calls at once (the others wait, in the order of
        the transitions). Calls not started when the hub stops are dropped.
        """
        self._listeners.append((callback, asyncio.Semaphore(LISTENER_CONCURRENCY)))

    def set_state(
        self, site_id: int, new: StateName, reason: str, *, link: LinkReport | None = None
    ) -> None:
        """Move a site to `new` (a same-state call only refreshes reason and link)."""
        old = self.site_state(site_id)
        if old.state == new:
            if link is not None or (new != "online" and reason != old.reason):
                self._states[site_id] = replace(
                    old, reason=reason if new != "online" else old.reason, link=link or old.link
                )
                self._touched(site_id)
            return
        at = datetime.fromtimestamp(self.clock(), UTC)
        info = self._site_info(site_id)
        province_id = info.province_id if info else old.province_id
        keep = link or (old.link if new != "offline" else None)
        self._states[site_id] = SiteState(site_id, new, reason, at, keep, province_id)
        self._log.record(site_id, new, reason, at, keep)
        self._touched(site_id)
        self._notify(PresenceChange(site_id, old.state, new, reason, at, province_id))

    def link_report(self, site_id: int, link: LinkReport) -> None:
        """A connected site's link report: degraded, recovered, or just the latest figures."""
        current = self._states.get(site_id)
        degraded = current is not None and current.state == "degraded"
        why = self.thresholds.degraded_reason(link, degraded)
        if why is not None:
            self.set_state(site_id, "degraded", why, link=link)
        elif degraded:
            self.set_state(site_id, "online", "link_recovered", link=link)
        elif current is not None:
            self._states[site_id] = replace(current, link=link)

    def _notify(self, change: PresenceChange) -> None:
        for callback, turns in self._listeners:
            try:
                result = callback(change)
                if inspect.isawaitable(result):
                    task = asyncio.create_task(self._call_listener(turns, result))
                    self._callbacks.add(task)
                    task.add_done_callback(self._listener_done)
            except Exception:
                log.exception("presence listener failed")

    async def _call_listener(self, turns: asyncio.Semaphore, call: Awaitable[None]) -> None:
        async with turns:
            if self.listening:
                await call
                return
        if inspect.iscoroutine(call):
            call.close()  # stopping: never started, so nothing half-done

    def _listener_done(self, task: asyncio.Task[None]) -> None:
        self._callbacks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("presence listener failed", exc_info=task.exception())

    async def drain_listeners(self, grace: float) -> None:
        """At stop: let listener calls already running end; the queued ones are dropped.

        Never cancel a call in the middle of a store call: a cancel that lands in the
        pool's reset of a connection makes SQLAlchemy log "Exception during reset",
        invalidate the connection, and with aiosqlite leaves a close that waits for a
        worker thread that has already stopped, a task that never ends, so
        ``asyncio.run`` waits for it forever at exit (and the process ignores SIGTERM:
        its handler only sets the stop event again). Calls still waiting for their turn
        see `listening` false and return without calling the listener: every consumer
        service is stopped before the hub (the runtime stops presence last).
        """
        self.listening = False
        pending = set(self._callbacks)
        if pending:
            _, pending = await asyncio.wait(pending, timeout=grace)
        for task in pending:
            log.error("presence listener call still running at stop: cancelled")
            await cancel_and_wait(task)
