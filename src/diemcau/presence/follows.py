"""Which sites follow which broadcast stream, kept in memory and in the store.

A follow is stored (``presence_follows``) with the stream's number at that moment,
so after a restart or a reconnect a site resumes every stream it follows from
where it started following it. Connected sites are told at once (``follow`` /
``unfollow`` control frames, docs/protocol.md); their row on the staff stream
changes (``in_meeting``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Mapping

from sqlalchemy import delete, insert, select

from diemcau.errors import Invalid
from diemcau.presence.models import FOLLOWS_TABLE, PresenceFollow
from diemcau.presence.protocol import control_frame, ws_text_frame
from diemcau.presence.session import SiteSession
from diemcau.presence.streams import StreamBook, check_stream_name
from diemcau.store import Database

__all__ = ["Follows"]

MEETING_PREFIX = "meeting:"


class Follows:
    """Followers per broadcast stream and followed streams per site.

    Args:
        db: the store.
        streams: the streams' numbering (a follow starts at the current number).
        live: the live sessions by site id (told of follows at once).
        unknown_sites: the ids among those given that are not in the directory
            (after a refresh, for sites created since the last load).
        touched: called with a site id whose staff row changed.
    """

    def __init__(
        self,
        db: Database,
        streams: StreamBook,
        live: Mapping[int, SiteSession],
        unknown_sites: Callable[[list[int]], Awaitable[list[int]]],
        touched: Callable[[int], None],
    ) -> None:
        self.db = db
        self._streams = streams
        self._live = live
        self._unknown_sites = unknown_sites
        self._touched = touched
        self._followers: dict[str, set[int]] = {}
        self._follows_of: dict[int, dict[str, int]] = {}
        self._lock = asyncio.Lock()

    @property
    def by_stream(self) -> Mapping[str, set[int]]:
        """Followers of every stream, the map itself (read by the fan-out per message)."""
        return self._followers

    async def load(self) -> None:
        """Read every stored follow (at start)."""
        async with self.db.session() as s:
            rows = (
                await s.execute(
                    select(PresenceFollow.stream, PresenceFollow.site_id, PresenceFollow.from_seq)
                )
            ).all()
        for stream, site_id, from_seq in rows:
            self._followers.setdefault(stream, set()).add(site_id)
            self._follows_of.setdefault(site_id, {})[stream] = from_seq

    def followers(self, stream: str) -> set[int]:
        return set(self._followers.get(stream, ()))

    def streams_of(self, site_id: int) -> dict[str, int]:
        """Broadcast streams a site follows, with the seq it follows from."""
        return dict(self._follows_of.get(site_id, {}))

    def following(self, site_id: int) -> Mapping[str, int]:
        """Like `streams_of` without the copy (read-only; for the welcome of a join)."""
        return self._follows_of.get(site_id, {})

    def in_meeting(self, site_id: int) -> bool:
        """Whether the site follows a ``meeting:*`` stream."""
        return any(name.startswith(MEETING_PREFIX) for name in self._follows_of.get(site_id, ()))

    async def follow(self, stream: str, site_ids: Collection[int]) -> None:
        """Make sites follow a broadcast stream from its current number on (persisted).

        Raises:
            Invalid: a bad stream name or a site id the directory does not know.
        """
        check_stream_name(stream)
        async with self._lock:
            st = self._streams.broadcast(stream)
            new = sorted(
                sid for sid in set(site_ids) if stream not in self._follows_of.get(sid, {})
            )
            if not new:
                return
            unknown = await self._unknown_sites(new)
            if unknown:
                shown = ", ".join(str(sid) for sid in unknown[:10])
                raise Invalid(f"unknown site ids: {shown}", code="unknown_site")
            from_seq = st.seq
            async with self.db.session() as s:
                for i in range(0, len(new), 1000):
                    await s.execute(
                        insert(FOLLOWS_TABLE),
                        [
                            {"stream": stream, "site_id": sid, "from_seq": from_seq}
                            for sid in new[i : i + 1000]
                        ],
                    )
            self._followed(stream, new, from_seq)

    def _followed(self, stream: str, new: list[int], from_seq: int) -> None:
        followers = self._followers.setdefault(stream, set())
        frame = ws_text_frame(control_frame({"type": "follow", "stream": stream, "seq": from_seq}))
        for sid in new:
            followers.add(sid)
            self._follows_of.setdefault(sid, {})[stream] = from_seq
            session = self._live.get(sid)
            if session is not None:
                if session.cursors.get(stream, 0) < from_seq:
                    session.cursors[stream] = from_seq
                session.write_frame(frame)
            self._touched(sid)

    async def unfollow(self, stream: str, site_ids: Collection[int] | None = None) -> None:
        """Stop sites (None: every follower) following a stream (persisted)."""
        async with self._lock:
            followers = self._followers.get(stream, set())
            gone = sorted(followers if site_ids is None else followers & set(site_ids))
            if not gone:
                return
            async with self.db.session() as s:
                if site_ids is None:
                    await s.execute(delete(PresenceFollow).where(PresenceFollow.stream == stream))
                else:
                    for i in range(0, len(gone), 500):
                        await s.execute(
                            delete(PresenceFollow).where(
                                PresenceFollow.stream == stream,
                                PresenceFollow.site_id.in_(gone[i : i + 500]),
                            )
                        )
            self._unfollowed(stream, followers, gone)

    def _unfollowed(self, stream: str, followers: set[int], gone: list[int]) -> None:
        frame = ws_text_frame(control_frame({"type": "unfollow", "stream": stream}))
        for sid in gone:
            followers.discard(sid)
            self._follows_of.get(sid, {}).pop(stream, None)
            session = self._live.get(sid)
            if session is not None:
                session.cursors.pop(stream, None)
                session.write_frame(frame)
            self._touched(sid)
        if not followers:
            self._followers.pop(stream, None)
            st = self._streams.find_broadcast(stream)
            if st is not None:
                st.forget()
