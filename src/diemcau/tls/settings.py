"""The server's TLS context from its settings: both files, or neither.

One place decides, so the HTTP app and the site-session socket can never
disagree (one on TLS, the other on plain text).
"""

from __future__ import annotations

import ssl
from pathlib import Path

from diemcau.config import Settings
from diemcau.tls.context import TlsError, server_context

__all__ = ["server_context_for"]


def server_context_for(settings: Settings) -> ssl.SSLContext | None:
    """The TLS server context the settings ask for; None when TLS is off.

    Raises `TlsError` when only one of certificate and key is given, or either
    file cannot be used.
    """
    if not settings.tls:
        return None
    if not settings.tls_cert or not settings.tls_key:
        missing = "--tls-key" if settings.tls_cert else "--tls-cert"
        raise TlsError(f"TLS needs both a certificate and a key: {missing} is missing")
    return server_context(Path(settings.tls_cert), Path(settings.tls_key))
