"""Reminders: invited sites are told of a scheduled meeting shortly before its start.

A background task looks every few seconds (by the runtime clock, so tests move time by
hand) for scheduled meetings whose reminder time has come, and sends each invited site
one durable message with a stable id.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from diemcau.actors import Actor
from diemcau.audit import record_audit
from diemcau.meetings.invites import Invitations, InviteSpec
from diemcau.meetings.models import Meeting
from diemcau.meetings.ports import Hub
from diemcau.meetings.store import MeetingStore
from diemcau.meetings.views import MeetingView
from diemcau.tasks import Periodic

__all__ = ["Reminders"]


_SYSTEM = Actor.system()


class Reminders:
    """Reminds the invited sites of every scheduled meeting, once, before its start.

    Args:
        store: the meetings' shared read side (clock, meetings).
        invitations: resolves a meeting's invitation rule to site ids.
        hub: the presence hub (durable per-site messages).
        poll_s: how often the task looks for meetings about to start (0: no task).
    """

    def __init__(
        self, store: MeetingStore, invitations: Invitations, hub: Hub, *, poll_s: float = 5.0
    ) -> None:
        self.store = store
        self.invitations = invitations
        self.hub = hub
        self.poll_s = poll_s
        self._loop = Periodic(
            "meeting-reminders", poll_s, self.run_due_reminders, what="meeting reminders", first=0
        )

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        """End the loop: between rounds at once, during one once its sends are stored."""
        await self._loop.stop()

    async def run_due_reminders(self) -> int:
        """Remind invited sites of every scheduled meeting whose reminder time has come.

        Sent once per meeting (``reminder_sent_at``) as a durable per-site message with a
        stable id, so a crash between sending and marking cannot remind twice on resume.
        Returns the number of meetings reminded.
        """
        now = self.store.now()
        async with self.store.db.session() as s:
            due = (
                await s.scalars(
                    select(Meeting).where(
                        Meeting.state == "scheduled",
                        Meeting.reminder_sent_at.is_(None),
                        Meeting.scheduled_start.is_not(None),
                    )
                )
            ).all()
        count = 0
        for m in due:
            assert m.scheduled_start is not None
            if m.scheduled_start - timedelta(seconds=m.reminder_lead_s) > now:
                continue
            site_ids = await self.invitations.resolve(InviteSpec.from_json(m.invite_spec))
            await self.hub.send(
                site_ids,
                "meeting.reminder",
                {"meeting": MeetingView.of(m).site_dict()},
                msg_id=f"meeting:{m.id}:reminder",
            )
            async with self.store.db.session() as s:
                row = await self.store.load(s, m.id)
                row.reminder_sent_at = now
                await record_audit(
                    s,
                    _SYSTEM,
                    "meeting.remind",
                    m.id,
                    details={"sites": len(site_ids)},
                    at=now,
                )
            count += 1
        return count
