"""TLS for every browser-facing connection: a private lab CA, server certificates, checks.

`certs` creates a lab (or closed-network) CA and the server certificates it
signs; `context` loads any certificate files into SSL contexts and fails with a
one-line `TlsError` when something is wrong; `cli` is ``diemcau tls ...``.
"""

from diemcau.tls.context import (
    TlsError,
    check_server_files,
    client_context,
    server_context,
    spki_sha256,
)

__all__ = ["TlsError", "check_server_files", "client_context", "server_context", "spki_sha256"]
