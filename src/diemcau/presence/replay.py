"""Catching a resuming site up: each stream it follows replayed from memory or the store.

A site that resumes sends the last number it saw per stream (docs/protocol.md,
``hello.resume``). What it missed comes from the stream's ring when it reaches
back far enough, else from the store; beyond `replay_limit` messages, or for a
number the server never issued, the site gets ``reset`` and resyncs over HTTP.
Live messages that arrive meanwhile wait in the session's backlog
(`SiteSession.replaying`), so nothing is lost nor reordered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from diemcau.presence.message_store import replay_from_db
from diemcau.presence.protocol import control_frame
from diemcau.presence.session import SiteSession
from diemcau.presence.streams import Stream
from diemcau.store import Database

__all__ = ["Replayer"]


class Replayer:
    """Brings a new session's cursors up to date, then lets live traffic through.

    Args:
        db: the store (messages older than the ring).
        replay_limit: at most this many missed messages per stream are replayed.
    """

    def __init__(self, db: Database, replay_limit: int) -> None:
        self.db = db
        self.replay_limit = replay_limit

    async def catch_up(
        self,
        session: SiteSession,
        plan: Sequence[tuple[Stream, int]],
        resume: Mapping[str, int] | None,
    ) -> None:
        """Replay each ``(stream, follows from)`` of `plan`; then end the replay mode.

        Without `resume` (a fresh client) nothing is replayed: cursors start at the
        current numbers. Returns early, leaving the session as is, if it closes.
        """
        for st, from_seq in plan:
            if session.closed:
                return
            current = st.delivered
            if resume is None:
                session.cursors[st.seen_as] = current
                continue
            last = max(resume.get(st.seen_as, from_seq), from_seq)
            if last > current:
                self._reset(session, st, current, "ahead_of_server")
                continue
            missed = st.from_memory(last)
            if missed is None:
                missed = await replay_from_db(self.db, st, last, current, self.replay_limit + 1)
                if session.closed:
                    return
            if len(missed) > self.replay_limit:
                self._reset(session, st, current, "too_many_missed")
                continue
            for seq, payload in missed:
                session.cursors[st.seen_as] = seq
                session.write_payload(payload)
            session.cursors[st.seen_as] = max(current, session.cursors.get(st.seen_as, 0))
        session.finish_replay()

    @staticmethod
    def _reset(session: SiteSession, st: Stream, current: int, why: str) -> None:
        session.cursors[st.seen_as] = current
        session.write_payload(
            control_frame({"type": "reset", "stream": st.seen_as, "seq": current, "reason": why})
        )
