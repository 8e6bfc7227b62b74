"""Site requests (``req``) routed to the handler a service registered for their kind.

Services register handlers with `PresenceHub.on_message`; a handler gets the
site's principal and the request body and returns the reply body. A
`DomainError` becomes an error reply with its code; anything else is logged and
answered ``internal``, so one failing handler never ends the site's session. A store
that cannot serve now is answered ``unavailable`` (send it again later).

A request runs to its end even when its session closes meanwhile (the site dropped):
handlers write to the store, and a cancel landing in the middle of a write could leave
its caller's bookkeeping behind the store, or the connection's reset to a cancelled
task. The reply then goes nowhere; the site sends the request again after it resumes.
At stop, `drain` refuses new requests and waits for those in flight.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from diemcau.accounts.service import SitePrincipal
from diemcau.errors import DomainError
from diemcau.presence.protocol import Reply, ReplyError, Request
from diemcau.presence.session import SiteSession
from diemcau.store.outage import is_store_outage
from diemcau.tasks import cancel_and_wait

__all__ = ["MessageHandler", "RequestRouter"]

log = logging.getLogger(__name__)

MessageHandler = Callable[[SitePrincipal, Mapping[str, Any]], Awaitable[Mapping[str, Any] | None]]


class RequestRouter:
    """One handler per request kind; answers every request with a ``reply``."""

    def __init__(self) -> None:
        self._handlers: dict[str, MessageHandler] = {}
        self._inflight: set[asyncio.Task[Any]] = set()
        # False while the server stops: new requests are answered ``unavailable``.
        self.accepting = True

    def on_message(self, kind: str, handler: MessageHandler) -> None:
        """Route inbound requests of `kind` to `handler` (its return value is the reply).

        Raises:
            ValueError: a handler for `kind` is already registered.
        """
        if kind in self._handlers:
            raise ValueError(f"a handler for '{kind}' is already registered")
        self._handlers[kind] = handler

    def kinds(self) -> list[str]:
        return sorted(self._handlers)

    @property
    def in_flight(self) -> int:
        """Requests being handled now (every session)."""
        return len(self._inflight)

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
                log.warning("%s: the store cannot serve now: %s", req.kind, exc)
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
        pending = set(self._inflight)
        if pending:
            _, pending = await asyncio.wait(pending, timeout=grace)
        for task in pending:
            log.error("a site request still running %.0f s into the stop: cancelled", grace)
            await cancel_and_wait(task)
