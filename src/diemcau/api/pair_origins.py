"""Which browser origins belong to the servers of a standby pair, for cross-origin health reads.

A site terminal opened on one server of a pair must learn, after that server died,
whether another one now serves: it reads that server's ``/healthz`` from its own
page, a cross-origin request. Only the health answer (status, version, role: nothing
secret) is opened to the pair's own origins, never to any page on the web, and never
with credentials (docs/reliability.md, "The standby pair").
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

__all__ = ["cors_headers", "origin_of", "pair_origins"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str:
    """The origin a browser sends for a page at `url` (``scheme://host[:port]``, the
    default port left out, host lower-cased); '' for a URL without a host."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return ""
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host:
        return ""
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def pair_origins(servers: Iterable[str]) -> frozenset[str]:
    """The origins of the pair's base URLs (``--servers``)."""
    return frozenset(o for o in map(origin_of, servers) if o)


def cors_headers(origin: str | None, allowed: frozenset[str]) -> dict[str, str]:
    """The CORS answer for a request from `origin`: allowed only for a server of the pair."""
    if not origin or origin not in allowed:
        return {"Vary": "Origin"}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
