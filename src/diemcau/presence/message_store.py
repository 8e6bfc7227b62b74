"""Durable server → site messages in the store: group-commit writes and the reads resumes need.

Every durable message is stored before `send`/`broadcast` return. `MessageWriter`
is a group commit: everything queued while the previous transaction ran is stored
in one transaction, then handed to the fan-out in the order the numbers were
given, so a stream is always delivered in order even when many callers send at
once. The functions below read what a restart (last numbers), a resume (missed
messages) or an idempotent retry (message ids already stored) needs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, insert, select

from diemcau.presence.models import MESSAGES_TABLE, PresenceMessage
from diemcau.presence.protocol import msg_frame
from diemcau.presence.streams import Outgoing, Stream
from diemcau.store import Database

__all__ = [
    "MessageWriter",
    "load_stream_seqs",
    "replay_from_db",
    "stored_msg_ids",
    "stored_seq",
]

log = logging.getLogger(__name__)


async def load_stream_seqs(db: Database) -> dict[str, int]:
    """The last stored sequence number of every stream (at hub start)."""
    async with db.session() as s:
        rows = (
            await s.execute(
                select(PresenceMessage.stream, func.max(PresenceMessage.seq)).group_by(
                    PresenceMessage.stream
                )
            )
        ).all()
    return {stream: int(seq) for stream, seq in rows}


async def replay_from_db(
    db: Database, stream: Stream, after: int, until: int, limit: int
) -> list[tuple[int, bytes]]:
    """Stored messages of `stream` with ``after < seq <= until``, at most `limit` of them."""
    async with db.session() as s:
        rows = (
            await s.execute(
                select(
                    PresenceMessage.seq,
                    PresenceMessage.msg_id,
                    PresenceMessage.kind,
                    PresenceMessage.body,
                    PresenceMessage.at,
                )
                .where(
                    PresenceMessage.stream == stream.key,
                    PresenceMessage.seq > after,
                    PresenceMessage.seq <= until,
                )
                .order_by(PresenceMessage.seq)
                .limit(limit)
            )
        ).all()
    out: list[tuple[int, bytes]] = []
    for r in rows:
        at = r.at if r.at.tzinfo else r.at.replace(tzinfo=UTC)
        out.append(
            (r.seq, msg_frame(stream.seen_as, r.seq, r.msg_id, r.kind, at.timestamp(), r.body))
        )
    return out


async def stored_msg_ids(db: Database, keys: Sequence[str], msg_id: str) -> set[str]:
    """Which of the stream `keys` already hold `msg_id` (idempotent retries)."""
    found: set[str] = set()
    async with db.session() as s:
        for i in range(0, len(keys), 500):
            chunk = list(keys[i : i + 500])
            rows = await s.scalars(
                select(PresenceMessage.stream).where(
                    PresenceMessage.msg_id == msg_id, PresenceMessage.stream.in_(chunk)
                )
            )
            found.update(rows)
    return found


async def stored_seq(db: Database, stream_key: str, msg_id: str) -> int | None:
    """The number `msg_id` got on the stream `stream_key`, if it is stored."""
    async with db.session() as s:
        seq = await s.scalar(
            select(PresenceMessage.seq).where(
                PresenceMessage.stream == stream_key, PresenceMessage.msg_id == msg_id
            )
        )
    return None if seq is None else int(seq)


@dataclass
class _Batch:
    items: list[Outgoing]
    future: asyncio.Future[None]


class MessageWriter:
    """Group commit of durable messages, then fan-out in numbering order.

    Args:
        db: the store.
        deliver: called with each batch after it is committed, in submission order.
    """

    def __init__(self, db: Database, deliver: Callable[[list[Outgoing]], None]) -> None:
        self.db = db
        self.deliver = deliver
        self._queue: deque[_Batch] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        # Seconds spent storing and fanning out the last batch (diagnostics, bench).
        self.last_store_s = 0.0
        self.last_fanout_s = 0.0

    def start(self) -> None:
        self._closing = False
        self._task = asyncio.create_task(self._run(), name="presence-message-writer")

    async def stop(self) -> None:
        """Store what is queued, then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None

    def submit(self, items: list[Outgoing]) -> asyncio.Future[None]:
        """Queue numbered messages; the future resolves once they are stored."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._task is None:
            fut.set_exception(RuntimeError("the presence hub is not running"))
            return fut
        self._queue.append(_Batch(items, fut))
        self._wake.set()
        return fut

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batches: list[_Batch] = []
                rows = 0
                while self._queue and rows < 20_000:
                    b = self._queue.popleft()
                    batches.append(b)
                    rows += len(b.items)
                await self._commit(batches)
            if self._closing and not self._queue:
                return

    async def _commit(self, batches: list[_Batch]) -> None:
        values = [
            {
                "stream": o.stream.key,
                "seq": o.seq,
                "msg_id": o.msg_id,
                "kind": o.kind,
                "body": o.body_json,
                "at": datetime.fromtimestamp(o.at, UTC),
            }
            for b in batches
            for o in b.items
        ]
        started = time.perf_counter()
        try:
            async with self.db.session() as s:
                await s.execute(insert(MESSAGES_TABLE), values)
        except Exception as exc:
            log.exception("storing %d presence messages failed", len(values))
            for b in batches:
                if not b.future.done():
                    b.future.set_exception(exc)
            return
        stored = time.perf_counter()
        for b in batches:
            try:
                self.deliver(b.items)
            except Exception:
                log.exception("presence fan-out failed")
            if not b.future.done():
                b.future.set_result(None)
        self.last_store_s = stored - started
        self.last_fanout_s = time.perf_counter() - stored
