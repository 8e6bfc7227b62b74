"""Load certificate files into SSL contexts, or fail with one clear line.

A site terminal served over plain text cannot use its camera, and a page served
over HTTPS cannot open ``ws://`` sockets, so a deployment that asked for TLS must
never fall back to plain text: every problem with the files (missing, not PEM,
a key that does not match, expired, not yet valid) raises `TlsError` naming the
file and the fault, and the server does not start.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ssl
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # cryptography (~10 MB resident) is loaded only when a file is checked
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

__all__ = ["TlsError", "check_server_files", "client_context", "server_context", "spki_sha256"]


class TlsError(Exception):
    """A certificate or key that cannot be used; the message is one line for the operator."""


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise TlsError(f"TLS {what} {path}: no such file") from None
    except OSError as exc:
        raise TlsError(f"TLS {what} {path}: cannot read it ({exc.strerror})") from None


def load_certificate(path: Path) -> x509.Certificate:
    """The first certificate of a PEM file (the leaf of a chain)."""
    from cryptography import x509

    data = _read(path, "certificate")
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError:
        raise TlsError(f"TLS certificate {path}: not a PEM certificate") from None


def _load_key(path: Path) -> PrivateKeyTypes:
    from cryptography.hazmat.primitives import serialization

    data = _read(path, "key")
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise TlsError(f"TLS key {path}: encrypted keys are not supported; decrypt it") from None
    except ValueError:
        raise TlsError(f"TLS key {path}: not a PEM private key") from None


def check_server_files(
    cert: Path, key: Path, *, now: dt.datetime | None = None
) -> x509.Certificate:
    """Check a server certificate and its key before anything listens; returns the leaf.

    Raises `TlsError` when a file is missing or unreadable, is not PEM, the key
    does not belong to the certificate, or the certificate is outside its
    validity period.
    """
    from cryptography.hazmat.primitives import serialization

    leaf = load_certificate(cert)
    private = _load_key(key)
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    if private.public_key().public_bytes(enc, fmt) != leaf.public_key().public_bytes(enc, fmt):
        raise TlsError(f"TLS key {key} does not match certificate {cert}")
    moment = now or dt.datetime.now(dt.UTC)
    if moment < leaf.not_valid_before_utc:
        raise TlsError(
            f"TLS certificate {cert} is not valid before {leaf.not_valid_before_utc:%Y-%m-%d %H:%M}"
            " UTC (check the clock)"
        )
    if moment > leaf.not_valid_after_utc:
        raise TlsError(
            f"TLS certificate {cert} expired on {leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
        )
    return leaf


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A TLS server context (TLS 1.2+) for the HTTP app or the site-session socket."""
    check_server_files(cert, key)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(str(cert), str(key))
    except ssl.SSLError as exc:
        raise TlsError(f"TLS certificate {cert}: {exc.reason or exc}") from None
    return ctx


def client_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """A verifying client context: the system's trust store, or only ``ca_file``."""
    if ca_file is None:
        return ssl.create_default_context()
    load_certificate(ca_file)
    ctx = ssl.create_default_context(cafile=str(ca_file))
    return ctx


def spki_sha256(cert: Path) -> str:
    """Base64 SHA-256 of a certificate's public key (Chromium's SPKI pin format)."""
    from cryptography.hazmat.primitives import serialization

    leaf = load_certificate(cert)
    der = leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(der).digest()).decode()
