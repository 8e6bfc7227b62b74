"""Browser hardening headers on every HTTP response (docs/security.md, "Browser pages").

The staff token lives in the pages' storage, so a page must never run script it did
not load from this server, never be framed by another site (clickjacking the chair
console), never have a response sniffed into another type, and never tell another
site which page linked to it. The pages carry no inline script and no inline event
handler, so the policy allows scripts from this origin only. What the policy still
opens, and why:

- ``style-src 'unsafe-inline'``: the pages set ``style`` attributes (a legend dot's
  colour, a bar's width); styles cannot run code.
- ``connect-src ws: wss:``: the site-session socket listens on its own port and the
  Janus gateways on nodes declared at run time (relays on other hosts), so the
  socket origins are not known when the policy is written. A server of a standby
  pair adds the pair's origins (``--servers``): its site terminal reads the other
  server's health check to follow a takeover (docs/reliability.md).
- ``img-src`` adds the optional map tile server (``DIEMCAU_TILE_URL``).
- ``worker-src blob:``: the site terminal ticks its heartbeats in a tiny worker it
  makes from its own code (a hidden tab's timers are throttled); only script already
  running from this origin can make one.
- The API explorer (``/docs``) is the framework's page with one inline script; it
  alone gets ``script-src 'unsafe-inline'`` (it holds no stored token).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["SecurityHeaders", "content_security_policy"]


# Paths served by the framework's API explorer (inline bootstrap script).
_EXPLORER_PATHS = ("/docs", "/docs/oauth2-redirect")


def _origin(url: str) -> str:
    """The ``scheme://host[:port]`` of `url`, or "" when it is not an absolute URL."""
    parts = urlsplit(url.replace("{", "").replace("}", ""))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ""
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(
    *, tile_url: str = "", inline_script: bool = False, connect: Iterable[str] = ()
) -> str:
    """The policy text; `tile_url` (an XYZ template) adds its origin to the images,
    `connect` (origins: a standby pair's servers) to what pages may fetch."""
    images = " ".join(x for x in ("'self'", "data:", "blob:", _origin(tile_url)) if x)
    script = "'self' 'unsafe-inline'" if inline_script else "'self'"
    fetches = " ".join(["'self'", *sorted({o for o in map(_origin, connect) if o}), "ws:", "wss:"])
    return "; ".join(
        (
            "default-src 'self'",
            f"script-src {script}",
            "style-src 'self' 'unsafe-inline'",
            f"img-src {images}",
            "media-src 'self' blob:",
            "worker-src 'self' blob:",
            f"connect-src {fetches}",
            "font-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


class SecurityHeaders:
    """ASGI middleware adding the hardening headers to every HTTP response.

    A header a route set itself is kept (a download may have its own policy).
    """

    def __init__(self, app: ASGIApp, *, tile_url: str = "", connect: Iterable[str] = ()) -> None:
        self.app = app
        connect = tuple(connect)
        page = content_security_policy(tile_url=tile_url, connect=connect)
        explorer = content_security_policy(tile_url=tile_url, inline_script=True, connect=connect)
        common = [
            (b"x-frame-options", b"DENY"),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]
        self._page = [(b"content-security-policy", page.encode()), *common]
        self._explorer = [(b"content-security-policy", explorer.encode()), *common]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self._explorer if scope.get("path") in _EXPLORER_PATHS else self._page

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(n, v) for n, v in extra if n not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
