"""Group commit: many small writes (report filings, directive acknowledgements) per transaction.

When a whole country files at once, thousands of one-report transactions
queue behind each other (SQLite has one writer; PostgreSQL pays a commit
each). The batcher hands every filing that arrived while the previous batch
was being written to the next transaction, so the cost of a commit and of the
per-statement round trips is shared by up to `max_batch` filings; a lone
filing is written at once, with no added wait (``bench/command.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, Protocol, TypeVar

__all__ = ["GroupCommit"]


class _Keyed(Protocol):
    @property
    def key(self) -> Hashable: ...


_I = TypeVar("_I", bound=_Keyed)
_R = TypeVar("_R")

WriteBatch = Callable[[Sequence[_I]], Awaitable[list[_R | BaseException]]]


class GroupCommit(Generic[_I, _R]):
    """Queues items and writes them in batches through `write`, one batch at a time.

    `write` returns one outcome per item, in order: a result, or the exception
    that item's caller gets. Two items with the same ``key`` never share a
    batch (the second waits for the next), so one transaction never touches a
    report twice.
    """

    def __init__(self, write: WriteBatch[_I, _R], *, max_batch: int = 256) -> None:
        self._write = write
        self._max = max_batch
        self._queue: list[tuple[_I, asyncio.Future[_R]]] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(self, item: _I) -> _R:
        fut: asyncio.Future[_R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, fut))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        return await fut

    async def _run(self) -> None:
        # Runs while there is work; a new one starts with the next submit.
        while self._queue:
            batch: list[tuple[_I, asyncio.Future[_R]]] = []
            keys: set[Hashable] = set()
            rest: list[tuple[_I, asyncio.Future[_R]]] = []
            for entry in self._queue:
                if len(batch) < self._max and entry[0].key not in keys:
                    keys.add(entry[0].key)
                    batch.append(entry)
                else:
                    rest.append(entry)
            self._queue = rest
            try:
                outcomes = await self._write([item for item, _ in batch])
            except BaseException as exc:  # noqa: BLE001 - every waiting caller gets it
                outcomes = [exc] * len(batch)
                if not isinstance(exc, Exception):
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    raise
            for (_, fut), outcome in zip(batch, outcomes, strict=True):
                if fut.done():
                    continue
                if isinstance(outcome, BaseException):
                    fut.set_exception(outcome)
                else:
                    fut.set_result(outcome)
