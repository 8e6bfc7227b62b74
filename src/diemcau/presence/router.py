"""Site requests (``req``) routed to the handler a service registered for their kind.

Services register handlers with `PresenceHub.on_message`; a handler gets the
site's principal and the request body and returns the reply body. A
`DomainError` becomes an error reply with its code; anything else is logged and
answered ``internal``, so one failing handler never ends the site's session.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from diemcau.accounts.service import SitePrincipal
from diemcau.errors import DomainError
from diemcau.presence.protocol import Reply, ReplyError, Request
from diemcau.presence.session import SiteSession

__all__ = ["MessageHandler", "RequestRouter"]

log = logging.getLogger(__name__)

MessageHandler = Callable[[SitePrincipal, Mapping[str, Any]], Awaitable[Mapping[str, Any] | None]]


class RequestRouter:
    """One handler per request kind; answers every request with a ``reply``."""

    def __init__(self) -> None:
        self._handlers: dict[str, MessageHandler] = {}

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

    async def handle(self, session: SiteSession, req: Request) -> None:
        """Run the handler for `req` and write its reply to `session`."""
        handler = self._handlers.get(req.kind)
        if handler is None:
            self.reply_error(session, req.id, "unknown_kind", f"unknown request kind '{req.kind}'")
            return
        try:
            result = await handler(session.principal, req.body)
        except DomainError as exc:
            self.reply_error(session, req.id, exc.code, exc.message)
            return
        except Exception:
            log.exception("handler for %s failed", req.kind)
            self.reply_error(session, req.id, "internal", "internal error")
            return
        reply = Reply(id=req.id, ok=True, body=dict(result) if result is not None else None)
        session.write_payload(reply.model_dump_json(exclude_none=True).encode())

    def reply_error(self, session: SiteSession, req_id: str, code: str, message: str) -> None:
        reply = Reply(id=req_id, ok=False, error=ReplyError(code=code, message=message))
        session.write_payload(reply.model_dump_json(exclude_none=True).encode())
