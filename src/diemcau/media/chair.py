"""The chair feed's grants: the console's, or a stand-in's while the feed is lent to it.

The chair console publishes into the meeting's chair room on central; that feed
has one publisher id, so a stand-in (the demo's chair bot) and a person's
console cannot both publish it. A loan (`ChairGrants.lend`) lets the stand-in
hold it until a console asks for the chair grant.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from diemcau.media.grants import ChairGrant, GrantSigner, ProgramWatch
from diemcau.media.program import Program
from diemcau.media.state import PlaneState

__all__ = ["ChairGrants"]

log = logging.getLogger(__name__)


class ChairGrants:
    """Grants of programs' chair feeds, and the loans of those feeds to stand-ins."""

    def __init__(self, state: PlaneState, signer: GrantSigner) -> None:
        self._state = state
        self._signer = signer
        self._loans: dict[str, Callable[[], None]] = {}

    def grant(self, m: Program, holder: str) -> ChairGrant:
        """The chair feed's grant (`GrantSigner.chair`) with the pin of central's program
        room, made by `start_program` before any chair grant."""
        central = self._state.central
        program: ProgramWatch = {
            "room": m.room,
            "pin": self._state.control(central.name).pins.get(m.room),
            "feeds": m.feeds()[1:],
        }
        publish = (m.chair_room, m.chair_feed)
        return self._signer.chair(
            central, m.meeting_id, publish, program, holder, m.chair_generation
        )

    def console_grant(self, meeting_id: str | int | None, holder: str) -> ChairGrant:
        """The console's grant; if the chair feed is lent to a stand-in, asking ends the
        loan (its ``on_claimed`` is called once)."""
        m = self._state.program(meeting_id)
        claimed = self._loans.pop(m.meeting_id, None)
        if claimed is not None:
            try:
                claimed()
            except Exception:
                log.exception(
                    "chair feed of meeting %s: the stand-in's hand-over failed", m.meeting_id
                )
        return self.grant(m, holder)

    def lend(self, meeting_id: str | int, on_claimed: Callable[[], None]) -> ChairGrant:
        """Lend the chair feed to a stand-in until the next `console_grant`; its grant."""
        m = self._state.program(meeting_id)
        self._loans[m.meeting_id] = on_claimed
        return self.grant(m, "stand-in")

    def end_loan(self, meeting_id: str) -> None:
        """The program stopped: its loan ends silently."""
        self._loans.pop(meeting_id, None)
