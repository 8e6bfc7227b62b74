"""The public URLs the server announces, taken from configuration only.

Never from a request's ``Host`` header: anyone can send any, and a page, a cache or a
link built from the answer would send site terminals to that host (docs/security.md,
"Browser pages").
"""

from __future__ import annotations

from urllib.parse import urlsplit

from diemcau.runtime import Runtime

__all__ = ["presence_url"]


def presence_url(runtime: Runtime) -> str:
    """The site-session socket's URL as sites must be told it, from configuration only.

    The socket is served on its own port, so the page cannot guess it from its own
    address. ``DIEMCAU_PRESENCE_URL`` names it outright (behind a proxy); otherwise it
    is the socket's port on the host of the declared public URL (``--public-url``,
    the base of the join links), else on the bind address. Never the request's Host
    header: anyone can send any Host, and a cache or a link built from the answer would
    send terminals to that host (docs/security.md, "Browser pages").
    """
    hub = runtime.presence
    public = runtime.settings.public_url
    if hub.config.public_url or not public:
        return hub.url
    parts = urlsplit(public)
    host = parts.hostname or runtime.settings.host
    host = f"[{host}]" if ":" in host else host
    secure = parts.scheme == "https" or hub.config.ssl is not None
    return f"{'wss' if secure else 'ws'}://{host}:{hub.port}{hub.config.path}"
