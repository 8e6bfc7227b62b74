"""Site requests (``req``) routed to the handler a service registered for their kind.

Services register handlers with `PresenceHub.on_message`; a handler gets the
site's principal and the request body and returns the reply body. A
`DomainError` becomes an error reply with its code; anything else is logged and
answered ``internal``, so one failing handler never ends the site's session. A store
that cannot serve now is answered ``unavailable`` (send it again later).

At most `max_running` requests run at once across all sites; the rest wait in
arrival order as (session, request) pairs. When a national meeting starts,
10,794 sites send "meeting.join" within a second: run all at once, each held a
task and its handlers' frames while the joins queued on the store, ~4 KB per
join, and the heap they grew stayed with the process after they ended
(docs/performance.md). A waiting request costs its parsed message only.

A request runs to its end even when its session closes meanwhile (the site dropped):
handlers write to the store, and a cancel landing in the middle of a write could leave
its caller's bookkeeping behind the store, or the connection's reset to a cancelled
task. The reply then goes nowhere; the site sends the request again after it resumes.
A request still waiting when its session closes is dropped (nobody to answer; the
site sends it again after it resumes). At stop, `drain` refuses new requests, answers
the waiting ones ``unavailable`` and waits for those in flight.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping

from diemcau.accounts.service import SitePrincipal
from diemcau.errors import DomainError
from diemcau.logs import one_line
from diemcau.presence.protocol import Reply, ReplyError, Request
from diemcau.presence.session import SiteSession
from diemcau.store.outage import is_store_outage
from diemcau.tasks import cancel_and_wait

__all__ = ["MessageHandler", "RequestRouter"]

log = logging.getLogger(__name__)

OUTAGE_LOG_EVERY_S = 1.0

MessageHandler = Callable[
    [SitePrincipal, Mapping[str, object]], Awaitable[Mapping[str, object] | None]
]


class RequestRouter:
    """One handler per request kind; answers every request with a ``reply``.

    Args:
        max_running: requests whose handlers run at the same time (all sites).
    """

    def __init__(self, max_running: int = 1024) -> None:
        if max_running < 1:
            raise ValueError("max_running must be at least 1")
        self._handlers: dict[str, MessageHandler] = {}
        self.max_running = max_running
        self.running = 0
        self._waiting: deque[tuple[SiteSession, Request]] = deque()
        self._inflight: set[asyncio.Task[object]] = set()
        # False while the server stops: new requests are answered ``unavailable``.
        self.accepting = True
        # A store outage fails every request of a batch alike: one log line a second.
        self.refused_for_outage = 0
        self._outage_told = 0
        self._outage_said_at = -OUTAGE_LOG_EVERY_S

    def on_message(self, kind: str, handler: MessageHandler) -> None:
        """Route inbound requests of `kind` to `handler` (its return value is the reply).

        Raises:
            ValueError: a handler for `kind` is already registered.
        """
        if kind in self._handlers:
            raise ValueError(f"a handler for '{kind}' is already registered")
        self._handlers[kind] = handler

    def _log_outage(self, kind: str, exc: BaseException) -> None:
        """Count a request refused for a store outage; say so at most once a second."""
        self.refused_for_outage += 1
        self._outage_told += 1
        now = time.monotonic()
        if now - self._outage_said_at < OUTAGE_LOG_EVERY_S:
            return
        log.warning(
            "%s: the store cannot serve now (%s); %d request(s) told to send again",
            kind,
            one_line(exc),
            self._outage_told,
        )
        self._outage_said_at, self._outage_told = now, 0

    def kinds(self) -> list[str]:
        return sorted(self._handlers)

    @property
    def in_flight(self) -> int:
        """Requests being handled now (every session)."""
        return len(self._inflight)

    @property
    def waiting(self) -> int:
        """Requests received and not started yet."""
        return len(self._waiting)

    def submit(self, session: SiteSession, req: Request) -> None:
        """Run `req` now if fewer than `max_running` run, else when its turn comes."""
        if self.running < self.max_running:
            self._start(session, req)
        else:
            self._waiting.append((session, req))

    def _start(self, session: SiteSession, req: Request) -> None:
        self.running += 1
        task = asyncio.get_running_loop().create_task(self.handle(session, req))
        task.add_done_callback(lambda _: self._finished(session))

    def _finished(self, session: SiteSession) -> None:
        self.running -= 1
        session.request_done()
        while self._waiting and self.running < self.max_running:
            nxt, req = self._waiting.popleft()
            if nxt.closed:  # its session ended while it waited: nobody to answer
                nxt.request_done()
                continue
            self._start(nxt, req)

    async def handle(self, session: SiteSession, req: Request) -> None:
        """Run the handler for `req` and write its reply to `session`."""
        handler = self._handlers.get(req.kind)
        if handler is None:
            self.reply_error(session, req.id, "unknown_kind", f"unknown request kind '{req.kind}'")
            return
        if not self.accepting:
            self.reply_error(
                session, req.id, "unavailable", "the server is stopping: send it again later"
            )
            return
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        try:
            result = await handler(session.principal, req.body)
        except DomainError as exc:
            self.reply_error(session, req.id, exc.code, exc.message)
            return
        except Exception as exc:
            if is_store_outage(exc):
                self._log_outage(req.kind, exc)
                self.reply_error(
                    session, req.id, "unavailable", "the store cannot serve now: send it again"
                )
                return
            log.exception("handler for %s failed", req.kind)
            self.reply_error(session, req.id, "internal", "internal error")
            return
        finally:
            if task is not None:
                self._inflight.discard(task)
        reply = Reply(id=req.id, ok=True, body=dict(result) if result is not None else None)
        session.write_payload(reply.model_dump_json(exclude_none=True).encode())

    def reply_error(self, session: SiteSession, req_id: str, code: str, message: str) -> None:
        reply = Reply(id=req_id, ok=False, error=ReplyError(code=code, message=message))
        session.write_payload(reply.model_dump_json(exclude_none=True).encode())

    async def drain(self, grace: float) -> None:
        """Refuse new requests and let those in flight end; cut what runs past `grace`."""
        self.accepting = False
        while self._waiting:
            session, req = self._waiting.popleft()
            session.request_done()
            if not session.closed:
                self.reply_error(
                    session, req.id, "unavailable", "the server is stopping: send it again later"
                )
        pending = set(self._inflight)
        if pending:
            _, pending = await asyncio.wait(pending, timeout=grace)
        for task in pending:
            log.error("a site request still running %.0f s into the stop: cancelled", grace)
            await cancel_and_wait(task)
