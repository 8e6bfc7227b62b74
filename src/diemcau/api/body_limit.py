"""Every request body is cut at a size limit, counted as it streams in (413 ``too_large``).

Without a bound, one request with a huge body (a JSON login of a gigabyte) is read
into memory whole before any check runs. The limit is counted on the bytes that
arrive, so a missing or lying ``Content-Length`` changes nothing; a declared length
over the limit is refused before anything is read. Routes that take files keep their
own, larger limits (`ROUTE_LIMITS`), and stop reading past them themselves.

Why not the framework's own body limit: for a declared oversize body it replaces
whatever the app answered with a plain-text 413, while every client of this API
reads the JSON error ``{"error": {"code", "message"}}``; raising an HTTP 413
exception from the body reader instead lets the app's error handler answer it.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyLimit", "BodyTooLarge", "LIMIT_SCOPE_KEY"]


# Where the limit that applies to a request is left for the error handler to name.
LIMIT_SCOPE_KEY = "diemcau.body_limit"


class BodyTooLarge(HTTPException):
    """The request body passed its route's limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"request body larger than {limit} bytes")
        self.limit = limit


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimit:
    """ASGI middleware: `default` bytes per request body, `limits` for (method, path).

    Args:
        app: the app inside.
        default: the limit of every route not named in `limits`.
        limits: larger (or smaller) limits by ``(method, path)``.
    """

    def __init__(
        self, app: ASGIApp, default: int, limits: Mapping[tuple[str, str], int] | None = None
    ) -> None:
        self.app = app
        self.default = default
        self.limits = dict(limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.get((scope.get("method", ""), scope.get("path", "")), self.default)
        scope[LIMIT_SCOPE_KEY] = limit
        declared = _declared_length(scope)
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            if declared is not None and declared > limit:
                raise BodyTooLarge(limit)
            message = await receive()
            if message.get("type") == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited, send)
