"""Plain HTTP is for loopback only: elsewhere it is refused, or redirected to HTTPS.

A browser grants camera and microphone only to a secure context, and a join
link carries the site's secret: a site terminal opened over plain HTTP from any
address but loopback could not publish and would leak its join code on the
wire. So a request that arrived over plain HTTP (after uvicorn applied
``X-Forwarded-Proto`` from a trusted proxy) for a non-loopback host is answered
403 ``https_required``, and with TLS on, an optional listener on the HTTP port
answers every request with a 308 to the same path over HTTPS.
"""

from __future__ import annotations

import ipaddress
import json

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["https_only", "is_loopback_host", "redirect_app"]


_MESSAGE_VI = "Trang này chỉ mở được qua https://"
_MESSAGE_EN = "This page must be opened over https://"


def _host_header(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"host":
            return str(value.decode("latin-1"))
    server = scope.get("server")
    return str(server[0]) if server else ""


def _hostname(host: str) -> str:
    """The name part of a Host header (``[::1]:8080`` -> ``::1``)."""
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host[1:]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_loopback_host(host: str) -> bool:
    """Whether a Host header names this machine's loopback (``localhost`` included)."""
    name = _hostname(host).lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


async def _answer(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def https_only(app: ASGIApp) -> ASGIApp:
    """Wrap ``app``: plain-HTTP requests for a non-loopback host get 403 ``https_required``.

    WebSocket upgrades over plain HTTP to such a host are refused the same way
    (closed before accept).
    """

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind not in ("http", "websocket") or scope.get("scheme") in ("https", "wss"):
            await app(scope, receive, send)
            return
        if is_loopback_host(_host_header(scope)):
            await app(scope, receive, send)
            return
        if kind == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": "https required"})
            return
        path = str(scope.get("path", ""))
        if path.startswith("/api/"):
            body = json.dumps(
                {"error": {"code": "https_required", "message": _MESSAGE_EN}}
            ).encode()
            ctype = b"application/json"
        else:
            body = f"{_MESSAGE_VI}\n{_MESSAGE_EN}\n".encode()
            ctype = b"text/plain; charset=utf-8"
        await _answer(send, 403, [(b"content-type", ctype)], body)

    return wrapped


def redirect_app(https_port: int) -> ASGIApp:
    """An app that sends every request to the same host and path over HTTPS (308)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            return
        name = _hostname(_host_header(scope)) or "localhost"
        host = f"[{name}]" if ":" in name else name
        port = "" if https_port == 443 else f":{https_port}"
        raw = scope.get("raw_path") or str(scope.get("path", "/")).encode()
        target = f"https://{host}{port}{raw.decode('latin-1')}"
        query = scope.get("query_string", b"")
        if query:
            target += "?" + query.decode("latin-1")
        await _answer(send, 308, [(b"location", target.encode("latin-1"))], b"")

    return app
