"""While this server stands by, its API answers 503 ``standby`` and names the active one.

A standby's services are not running (`diemcau.standby`): it must not take writes,
and its reads would show nothing live. Pages, static files, the health check and the
two discovery endpoints a site terminal reads first (``/api/presence/info``,
``/api/web/config``: they list every server of the pair) are still served, so a site
that reaches the standby learns where to go.
"""

from __future__ import annotations

import json
import logging

from starlette.types import ASGIApp, Receive, Scope, Send

from diemcau.standby import Leadership

__all__ = ["OPEN_WHILE_STANDING_BY", "standby_guard"]

log = logging.getLogger(__name__)

# API paths a standby still answers.
OPEN_WHILE_STANDING_BY = frozenset({"/api/presence/info", "/api/web/config"})

# The close code a standby gives a WebSocket (the staff stream): try again later.
_TRY_AGAIN_LATER = 1013


def _guarded(path: str) -> bool:
    return path.startswith("/api/") and path not in OPEN_WHILE_STANDING_BY


def standby_guard(app: ASGIApp, leadership: Leadership) -> ASGIApp:
    """Wrap `app`: its API refuses while `leadership` is not active."""

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket") or leadership.active or not _guarded(scope["path"]):
            await app(scope, receive, send)
            return
        if kind == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": _TRY_AGAIN_LATER})
            return
        try:
            active = await leadership.active_server()
        except Exception:  # the refusal stands even when the holder cannot be named
            log.exception("the standby could not name the active server")
            active = None
        where = f"; the active server is {active}" if active else ""
        error: dict[str, str | None] = {
            "code": "standby",
            "message": f"this control server is the standby and serves no requests{where}",
            "active": active,
        }
        body = json.dumps({"error": error}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", b"2"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return guarded
