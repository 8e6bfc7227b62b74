"""Wiring: build the presence hub from the runtime's settings and attach it.

The site socket listens on its own port (``DIEMCAU_PRESENCE_PORT``, default the
HTTP port + 1) on the HTTP bind address (``DIEMCAU_PRESENCE_HOST`` overrides it:
where only TCP 443 gets through, sessions get their own address on port 443),
inside the same process and event loop. ``DIEMCAU_PRESENCE_URL`` overrides the
URL announced to sites (behind a proxy). With TLS settings it speaks ``wss://``.
"""

from __future__ import annotations

import os
import ssl as ssl_module

from diemcau.presence.hub import PresenceConfig, PresenceHub
from diemcau.runtime import Runtime
from diemcau.tls.settings import server_context_for

__all__ = ["attach", "config_from_env"]


def config_from_env(
    host: str, http_port: int, ssl: ssl_module.SSLContext | None = None
) -> PresenceConfig:
    port_text = os.environ.get("DIEMCAU_PRESENCE_PORT", "")
    port = int(port_text) if port_text.strip() else (http_port + 1 if http_port else 0)
    return PresenceConfig(
        host=os.environ.get("DIEMCAU_PRESENCE_HOST", "") or host,
        port=port,
        public_url=os.environ.get("DIEMCAU_PRESENCE_URL", ""),
        ssl=ssl,
        tune_gc=True,
    )


async def attach(runtime: Runtime) -> None:
    """Add ``runtime.services["presence"]`` (started and stopped with the app)."""
    settings = runtime.settings
    hub = PresenceHub(
        runtime.db,
        runtime.key,
        config_from_env(settings.host, settings.port, server_context_for(settings)),
        clock=runtime.clock,
    )
    runtime.add_service("presence", hub, hub.start, hub.stop)
