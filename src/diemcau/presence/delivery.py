"""Server → site delivery: a message checked, numbered, stored, then handed to the fan-out.

Durable messages are stored before `send`/`broadcast` return and replayed on
resume; a repeated `msg_id` already stored (or being stored) on a stream is
skipped, so callers may retry. Live-only messages (``durable=False``) go
straight to the connected sites with ``seq: null``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Mapping

from diemcau.errors import Invalid
from diemcau.presence.fanout import Fanout
from diemcau.presence.message_store import MessageWriter, stored_msg_ids, stored_seq
from diemcau.presence.protocol import (
    MAX_MESSAGE_BYTES,
    SITE_STREAM,
    encode_body,
    msg_frame,
    ws_text_frame,
)
from diemcau.presence.streams import Outgoing, Stream, StreamBook, check_stream_name
from diemcau.store import Database

__all__ = ["Delivery", "encode_checked", "BODY_MAX_BYTES"]

# Room left in a frame for the envelope (stream, seq, id, kind, at).
BODY_MAX_BYTES = MAX_MESSAGE_BYTES - 512


def encode_checked(kind: str, body: Mapping[str, object]) -> str:
    """The body encoded once, after checking the kind and the size.

    Raises:
        Invalid: bad kind, body not JSON-serialisable, or over the size limit.
    """
    if not kind or len(kind) > 64:
        raise Invalid("message kind must be 1-64 characters", code="bad_kind")
    try:
        body_json = encode_body(body)
    except (TypeError, ValueError) as exc:
        raise Invalid(f"message body is not JSON-serialisable: {exc}") from exc
    if len(body_json.encode()) > BODY_MAX_BYTES:
        raise Invalid(f"message body over {BODY_MAX_BYTES} bytes", code="message_too_big")
    return body_json


class Delivery:
    """Numbers and stores server → site messages, then the fan-out writes them.

    Args:
        db: the store.
        clock: wall clock in seconds (the ``at`` of a message).
        streams: every stream's numbering.
        writer: the group commit (its callback is the fan-out's `deliver`).
        fanout: writes live-only messages at once.
    """

    def __init__(
        self,
        db: Database,
        clock: Callable[[], float],
        streams: StreamBook,
        writer: MessageWriter,
        fanout: Fanout,
    ) -> None:
        self.db = db
        self.clock = clock
        self._streams = streams
        self._writer = writer
        self._fanout = fanout
        # (stream key, msg id) being stored now: a retry racing its original is skipped.
        self._pending_ids: set[tuple[str, str]] = set()

    async def send(
        self,
        site_ids: Collection[int],
        kind: str,
        body: Mapping[str, object],
        *,
        msg_id: str | None = None,
        durable: bool = True,
    ) -> None:
        """One message to each site on its own stream (see `PresenceHub.send`)."""
        body_json = encode_checked(kind, body)
        ids = sorted(set(site_ids))
        at = self.clock()
        mid = msg_id or uuid.uuid4().hex
        if not durable:
            frame = ws_text_frame(msg_frame(SITE_STREAM, None, mid, kind, at, body_json))
            self._fanout.write_to_sites(ids, frame)
            return
        streams = [self._streams.site(sid) for sid in ids]
        if msg_id is not None:
            streams = await self._without_duplicates(streams, msg_id)
        if not streams:
            return
        items = []
        for st in streams:
            st.seq += 1
            items.append(Outgoing(st, st.seq, mid, kind, body_json, at))
        await self._submit(items)

    async def broadcast(
        self,
        stream: str,
        kind: str,
        body: Mapping[str, object],
        *,
        durable: bool = True,
        msg_id: str | None = None,
    ) -> int:
        """One message to every follower of `stream` (see `PresenceHub.broadcast`)."""
        check_stream_name(stream)
        body_json = encode_checked(kind, body)
        st = self._streams.broadcast(stream)
        at = self.clock()
        mid = msg_id or uuid.uuid4().hex
        if not durable:
            frame = ws_text_frame(msg_frame(stream, None, mid, kind, at, body_json))
            self._fanout.write_to_followers(stream, frame)
            return st.seq
        if msg_id is not None:
            if not await self._without_duplicates([st], msg_id):
                seq = await stored_seq(self.db, st.key, msg_id)
                return seq or st.delivered
        st.seq += 1
        seq = st.seq
        await self._submit([Outgoing(st, seq, mid, kind, body_json, at)])
        return seq

    async def _without_duplicates(self, streams: list[Stream], msg_id: str) -> list[Stream]:
        fresh = [st for st in streams if (st.key, msg_id) not in self._pending_ids]
        stored = await stored_msg_ids(self.db, [st.key for st in fresh], msg_id)
        return [
            st for st in fresh if st.key not in stored and (st.key, msg_id) not in self._pending_ids
        ]

    async def _submit(self, items: list[Outgoing]) -> None:
        keys = [(o.stream.key, o.msg_id) for o in items]
        self._pending_ids.update(keys)
        try:
            await self._writer.submit(items)
        finally:
            self._pending_ids.difference_update(keys)
