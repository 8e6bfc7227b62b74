"""Wiring: build the presence hub from the runtime's settings and attach it.

The site socket listens on its own port (``DIEMCAU_PRESENCE_PORT``, default the
HTTP port + 1) on the HTTP bind address, inside the same process and event loop.
``DIEMCAU_PRESENCE_URL`` overrides the URL announced to sites (behind a proxy).
"""

from __future__ import annotations

import os

from diemcau.presence.hub import PresenceConfig, PresenceHub
from diemcau.runtime import Runtime

__all__ = ["attach", "config_from_env"]


def config_from_env(host: str, http_port: int) -> PresenceConfig:
    port_text = os.environ.get("DIEMCAU_PRESENCE_PORT", "")
    port = int(port_text) if port_text.strip() else (http_port + 1 if http_port else 0)
    return PresenceConfig(
        host=host,
        port=port,
        public_url=os.environ.get("DIEMCAU_PRESENCE_URL", ""),
        tune_gc=True,
    )


async def attach(runtime: Runtime) -> None:
    """Add ``runtime.services["presence"]`` (started and stopped with the app)."""
    settings = runtime.settings
    hub = PresenceHub(
        runtime.db,
        runtime.key,
        config_from_env(settings.host, settings.port),
        clock=runtime.clock,
    )
    runtime.add_service("presence", hub, hub.start, hub.stop)
