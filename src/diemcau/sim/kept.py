"""Bots that come back by themselves, as the chair console and a site's page do.

A node that dies (or restarts empty) drops every session on it. The pages
recover on their own (docs/media.md): the chair console publishes again when
its session closes, and a site subscribes again when its session closes, when
Janus hangs its subscription up, or when the feed it watches goes away
(VideoRoom tells a subscriber with an ``updated`` event whose streams are no
longer active). `KeptPublisher` and `KeptViewer` do the same with aiortc bots,
asking a grant source for a fresh target each time, so the faults bench and
tests can measure how long the program is gone when a media node is killed.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from diemcau.media.janus import JanusError
from diemcau.records import JsonObject
from diemcau.sim.janus_bots import JanusTarget, PublisherBot, ViewerBot
from diemcau.sim.stamps import label_code

__all__ = ["KeptPublisher", "KeptViewer", "TargetSource"]

log = logging.getLogger(__name__)

# A fresh target (URL, room, tokens) for the next attempt: a new grant.
TargetSource = Callable[[], Awaitable[JanusTarget]]


def _feed_gone(msg: JsonObject, feed_id: int) -> bool:
    """Whether a handle event says the subscribed feed stopped (hangup, unpublished, updated)."""
    kind = msg.get("janus")
    if kind in ("hangup", "detached"):
        return True
    plugindata = msg.get("plugindata")
    data = plugindata.get("data") if isinstance(plugindata, dict) else None
    if not isinstance(data, dict):
        return False
    if data.get("unpublished") is not None or data.get("left") is not None:
        return True
    if data.get("videoroom") == "updated":
        streams = [s for s in data.get("streams") or [] if s.get("feed_id") == feed_id]
        return not any(s.get("active", True) for s in streams)
    return False


class _Kept(abc.ABC):
    """A loop that runs one bot at a time and starts a new one when it is lost."""

    def __init__(self, source: TargetSource, retry: float) -> None:
        self._source = source
        self.retry = retry
        self.attempts = 0
        self.failures = 0
        self._task: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()
        self._up = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=type(self).__name__)

    async def wait_up(self, timeout: float) -> None:
        await asyncio.wait_for(self._up.wait(), timeout)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    @abc.abstractmethod
    async def _make(self, target: JanusTarget) -> PublisherBot | ViewerBot:
        """The bot this keeper keeps on ``target`` (a publisher or a viewer)."""

    def _watch(self, bot: PublisherBot | ViewerBot) -> None:
        """Set `_lost` when the bot's node drops it (its socket closes, or an event says so)."""
        assert bot.conn is not None
        conn_closed = bot.conn.closed

        async def _closed() -> None:
            await conn_closed.wait()
            self._lost.set()

        bot._tasks.append(asyncio.ensure_future(_closed()))

    async def _loop(self) -> None:
        while True:
            self._lost.clear()
            bot: PublisherBot | ViewerBot | None = None
            try:
                self.attempts += 1
                bot = await self._make(await self._source())
                self._watch(bot)
                self._up.set()
                await self._lost.wait()
            except asyncio.CancelledError:
                raise
            except (OSError, JanusError, TimeoutError, RuntimeError) as exc:
                self.failures += 1
                log.debug("%s attempt failed: %s", type(self).__name__, exc)
            finally:
                self._up.clear()
                if bot is not None:
                    await bot.stop()
            await asyncio.sleep(self.retry)


class KeptPublisher(_Kept):
    """Publishes stamped video and a tone as ``feed_id``, again whenever the node drops it.

    Args:
        source: a fresh publish target per attempt (the chair's grant).
        retry: seconds before publishing again (the console waits 2 s).
    """

    def __init__(
        self, source: TargetSource, feed_id: int, label: str, *, retry: float = 2.0
    ) -> None:
        super().__init__(source, retry)
        self.feed_id = feed_id
        self.label = label
        self.published_at: list[float] = []

    async def _make(self, target: JanusTarget) -> PublisherBot:
        bot = PublisherBot(target, self.feed_id, self.label)
        try:
            await bot.start()
        except BaseException:
            await bot.stop()
            raise
        self.published_at.append(time.monotonic())
        return bot


class KeptViewer(_Kept):
    """Watches ``feed_id``, subscribing again when the feed or the node goes away.

    Args:
        source: a fresh subscribe target per attempt (the site's grant).
        retry: seconds before subscribing again (a site's page waits 1-2 s).

    Every good frame's arrival and send time are kept per sender label
    (`frames_after`): a frame sent before a fault but decoded after it (a busy
    decoder lags behind) is no proof the program is back.
    """

    def __init__(self, source: TargetSource, feed_id: int, *, retry: float = 1.0) -> None:
        super().__init__(source, retry)
        self.feed_id = feed_id
        # Per label: (arrival, sent), both on the monotonic clock.
        self.frames: dict[int, list[tuple[float, float]]] = {}

    def _frame(self, at: float, label: int, sent: float) -> None:
        self.frames.setdefault(label, []).append((at, sent))

    async def _make(self, target: JanusTarget) -> ViewerBot:
        bot = ViewerBot(target, self.feed_id)
        bot.on_frame = self._frame
        try:
            await bot.start()
        except BaseException:
            await bot.stop()
            raise
        assert bot.handle is not None

        def _event(msg: JsonObject) -> None:
            if _feed_gone(msg, self.feed_id):
                self._lost.set()

        bot.handle.add_listener(_event)
        return bot

    def frames_after(self, since: float, label: str) -> list[float]:
        """Arrival times of good frames from ``label`` sent after ``since`` (monotonic)."""
        return [at for at, sent in self.frames.get(label_code(label), []) if sent > since]

    async def first_frame_after(self, since: float, label: str, timeout: float) -> float:
        """When the first frame from ``label`` sent after ``since`` came (waits for it)."""
        deadline = time.monotonic() + timeout
        while True:
            after = self.frames_after(since, label)
            if after:
                return after[0]
            if time.monotonic() > deadline:
                raise TimeoutError(f"no frame of {label} on feed {self.feed_id} in {timeout}s")
            await asyncio.sleep(0.02)
