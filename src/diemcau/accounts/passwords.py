"""Password hashing with a bound on how many argon2 computations run at once.

Each argon2 hash or check takes ~64 MiB of memory and tens of milliseconds of a
core, on purpose. Run without a bound (one thread per login request), a burst of
logins — a script, a reconnecting office — takes gigabytes and every core, and
the server falls over for everyone (docs/security.md, "Login abuse"). So at most
`concurrency` computations run at once and at most `max_waiting` wait for a turn;
past that a login is refused at once with 503 ``busy`` and a ``Retry-After``,
which costs nothing.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import Callable
from typing import TypeVar

from diemcau.errors import Unavailable
from diemcau.security import hash_password, verify_password

__all__ = ["PASSWORDS", "PasswordGate"]

T = TypeVar("T")


class PasswordGate:
    """Runs argon2 work in worker threads, `concurrency` at a time, `max_waiting` queued.

    Attributes:
        running: computations in progress now.
        peak: the most that ever ran at once (tests and benchmarks read it).
        refused: calls refused because the queue was full.
    """

    def __init__(self, concurrency: int, max_waiting: int) -> None:
        if concurrency < 1 or max_waiting < 0:
            raise ValueError("concurrency must be ≥ 1 and max_waiting ≥ 0")
        self.concurrency = concurrency
        self.max_waiting = max_waiting
        # Futures of the callers waiting for a slot, in arrival order. (No
        # asyncio.Semaphore: this object lives as long as the process and may serve
        # more than one event loop, e.g. one per test.)
        self._queue: deque[asyncio.Future[None]] = deque()
        self.running = 0
        self.peak = 0
        self.refused = 0

    @property
    def waiting(self) -> int:
        return len(self._queue)

    async def _acquire(self) -> None:
        if self.running < self.concurrency and not self._queue:
            self.running += 1
            return
        if len(self._queue) >= self.max_waiting:
            self.refused += 1
            raise Unavailable(
                "too many logins are being checked right now; try again in a moment",
                retry_after_s=1 + len(self._queue) // self.concurrency,
            )
        turn = asyncio.get_running_loop().create_future()
        self._queue.append(turn)
        try:
            await turn  # `_release` hands its slot over (running stays counted)
        except asyncio.CancelledError:
            if turn in self._queue:
                self._queue.remove(turn)
            elif turn.done() and not turn.cancelled():
                self._release()  # the slot was handed to us: pass it on
            raise

    def _release(self) -> None:
        while self._queue:
            turn = self._queue.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self.running -= 1

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """`fn(*args)` in a worker thread once a slot is free.

        Raises:
            Unavailable: `max_waiting` calls already wait (nothing was computed).
        """
        await self._acquire()
        try:
            self.peak = max(self.peak, self.running)
            return await asyncio.to_thread(fn, *args)
        finally:
            self._release()

    async def hash(self, password: str) -> str:
        return await self.run(hash_password, password)

    async def verify(self, stored: str, password: str) -> bool:
        return await self.run(verify_password, stored, password)


def _default_concurrency() -> int:
    return max(1, min(4, os.cpu_count() or 1))


# The process's one gate: the memory bound holds for the whole server.
PASSWORDS = PasswordGate(concurrency=_default_concurrency(), max_waiting=32)
