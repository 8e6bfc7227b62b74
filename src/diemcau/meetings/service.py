"""The meetings service: builds the meetings peers, wires them together, starts and stops them.

`MeetingService` is what the composition root constructs and what the API and the
site-session handlers reach meetings through. It holds no meeting logic itself: each
concern is a peer with typed collaborators, built here in dependency order so no peer
calls back into another that uses it (docs/meetings.md, "Service API"):

    store ← publisher ← attendance ← hands ← floor ← roster ← lifecycle
    invitations ← groups, reminders;  site_actions → attendance, hands, floor, conclusions
"""

from __future__ import annotations

import time
from collections.abc import Callable

from diemcau.directory.sites import SiteDirectory
from diemcau.meetings.alive import AliveMark
from diemcau.meetings.attendance import Attendance
from diemcau.meetings.conclusions import Conclusions
from diemcau.meetings.floor import FloorControl
from diemcau.meetings.groups import SiteGroups
from diemcau.meetings.hands import HandQueue
from diemcau.meetings.invites import Invitations
from diemcau.meetings.lifecycle import MeetingLifecycle
from diemcau.meetings.ports import Hub, MediaPort, NullHub
from diemcau.meetings.publisher import Publisher
from diemcau.meetings.reminders import Reminders
from diemcau.meetings.roll_call import RollCall
from diemcau.meetings.roster import Roster
from diemcau.meetings.site_actions import SiteActions
from diemcau.meetings.store import MeetingStore
from diemcau.store import Database

__all__ = ["MeetingService"]


class MeetingService:
    """Meetings of one control server: its peers, and their start and stop.

    Args:
        db: the store.
        hub: the presence hub; a `NullHub` if absent (CLI tools).
        clock: wall clock in seconds (tests pass a fake one).
        media: the media plane's port, or None when this server runs no media.
        sites: the directory's read model of sites (the composition root shares one);
            a private one is built if None.
        reminder_poll_s: how often the reminder task looks for meetings about to start
            (0: no task; tests call ``reminders.run_due_reminders`` themselves).
        alive_s: how often the store is told this server still runs its meetings (the
            precision of the gap attendance shows after a crash; 0: never).

    Attributes:
        store: meetings as stored, locks, and the mirrors of live meetings.
        invitations: invitation rules → site ids; codes → rules.
        groups: saved site groups.
        lifecycle: create, edit, start, extend, end.
        roster: participants; invitation changes (`set_invites`).
        attendance: presence intervals.
        roll_call: attendance counts and reports.
        hands: the raise-hand queue.
        floor: the chair's floor decisions; floor listeners.
        conclusions: conclusions and acknowledgements.
        site_actions: what sites do (join, leave, hands, acks), over HTTP or the session.
        reminders: reminders before scheduled starts.
        alive: the mark of the last moment this server was known up (crash gaps).
    """

    def __init__(
        self,
        db: Database,
        hub: Hub | None = None,
        *,
        clock: Callable[[], float] = time.time,
        media: MediaPort | None = None,
        sites: SiteDirectory | None = None,
        reminder_poll_s: float = 5.0,
        alive_s: float = 2.0,
    ) -> None:
        self.hub: Hub = hub if hub is not None else NullHub()
        self.sites = sites if sites is not None else SiteDirectory(db)
        self.store = MeetingStore(db, self.sites, clock=clock)
        self.publisher = Publisher(self.hub, media)
        self.invitations = Invitations(db, self.sites)
        self.groups = SiteGroups(db, self.invitations, clock=clock)
        self.attendance = Attendance(self.store, self.hub, self.publisher, self.sites)
        self.roll_call = RollCall(self.store, self.sites)
        self.hands = HandQueue(self.store, self.sites, self.attendance, self.publisher)
        self.floor = FloorControl(
            self.store, self.sites, self.attendance, self.hands, self.publisher
        )
        self.conclusions = Conclusions(self.store, self.hub, self.publisher, self.sites)
        self.roster = Roster(
            self.store, self.invitations, self.hub, self.publisher, self.attendance, self.floor
        )
        self.lifecycle = MeetingLifecycle(
            self.store,
            self.invitations,
            self.roster,
            self.hub,
            self.publisher,
            self.attendance,
            self.floor,
        )
        self.site_actions = SiteActions(
            self.store, self.attendance, self.hands, self.floor, self.conclusions
        )
        self.reminders = Reminders(self.store, self.invitations, self.hub, poll_s=reminder_poll_s)
        self.alive = AliveMark(
            db, self.store.now, lambda: self.attendance.open_count > 0, every_s=alive_s
        )

    def register(self) -> None:
        """Route site requests and presence transitions from the hub to the peers."""
        self.site_actions.register(self.hub)
        self.hub.add_listener(self.attendance.on_presence)

    async def start(self) -> None:
        """Reload live meetings from the store, reconcile attendance, start reminders.

        Running programs are not re-declared to the media plane here: the composition
        root does it once, from `live_floors`, when the media plane starts.
        """
        await self.store.reload()
        await self.sites.refresh_if_changed()  # loaded once here, not by the first join
        last_alive = await self.alive.last() if self.alive.every_s > 0 else None
        await self.attendance.reconcile(last_alive)
        self.alive.start()
        self.reminders.start()

    async def stop(self) -> None:
        """Stop reminders and close every open presence interval now (``server_stop``).

        Sites that had joined keep ``wants_in`` and are present again as soon as their
        session is back after the restart. After a crash instead (no stop), the intervals
        are closed at the next start (``server_restart``), as of the last alive mark.
        """
        await self.reminders.stop()
        await self.alive.stop()
        await self.attendance.close_all("server_stop")

    async def live_floors(self) -> dict[int, list[str]]:
        """Site codes holding the floor in every live meeting (for the media restore)."""
        return await self.store.live_floors()
