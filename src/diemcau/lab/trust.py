"""The lab CA of one run (tests, benchmarks), trusted by its Python clients and its Chromium.

`lab_tls` makes, once per process, a lab CA and a 127.0.0.1 server
certificate in a temporary folder removed at exit, and points this process's
Python clients (httpx, websockets, urllib, the bots' Janus sockets) at the CA
through ``SSL_CERT_FILE``. Chromium trusts exactly the certificates' keys
(``--ignore-certificate-errors-spki-list`` with `LabTls.spki`), the way a
province installs its CA, never "ignore certificate errors".
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from diemcau.tls.certs import LabCA, ServerFiles
from diemcau.tls.context import spki_sha256

__all__ = ["LabTls", "lab_tls"]


@dataclass(frozen=True)
class LabTls:
    """The run's lab CA and the loopback server certificate signed by it."""

    ca: LabCA
    server: ServerFiles
    spki: str


@functools.cache
def _make_lab_tls() -> LabTls:
    folder = Path(tempfile.mkdtemp(prefix="diemcau-lab-tls-"))
    atexit.register(shutil.rmtree, folder, True)
    ca = LabCA.open_or_create(folder)
    files = ca.issue(["127.0.0.1", "localhost"], folder, stem="server")
    return LabTls(ca, files, spki_sha256(files.cert))


def lab_tls() -> LabTls:
    """One lab CA and one 127.0.0.1 certificate per process (removed at exit).

    ``SSL_CERT_FILE`` is pointed at the CA at every call, not only the first: code
    run in the same process in between (the demo's command, which trusts its own
    lab CA) may have pointed it elsewhere.
    """
    tls = _make_lab_tls()
    os.environ["SSL_CERT_FILE"] = str(tls.ca.cert_path)
    return tls
