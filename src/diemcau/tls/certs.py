"""A private CA for a lab or a closed network, and the server certificates it signs.

Production takes any certificate files (a public CA, the government's CA); this
is for the lab, the demo, the tests and closed networks where the operator
installs one CA certificate on every commune PC. Keys are ECDSA P-256, server
certificates carry their names (DNS names or IP addresses) as subjectAltName
and are valid for ``days`` (397 by default, the browsers' ceiling).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from diemcau.tls.context import TlsError, load_certificate

if TYPE_CHECKING:  # cryptography (~10 MB resident) is loaded only to make certificates
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

__all__ = ["LabCA", "ServerFiles", "demo_server_files"]

_CA_DAYS = 3650


def _write_private(path: Path, data: bytes) -> None:
    """Write a key readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _san(name: str) -> x509.GeneralName:
    from cryptography import x509

    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


@dataclass(frozen=True)
class ServerFiles:
    """A server certificate (leaf then CA, PEM) and its key, as files."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class LabCA:
    """A CA certificate and key kept in one folder (``ca.pem``, ``ca-key.pem``)."""

    folder: Path

    @property
    def cert_path(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def key_path(self) -> Path:
        return self.folder / "ca-key.pem"

    @classmethod
    def open_or_create(cls, folder: Path, name: str = "diemcau lab CA") -> LabCA:
        """The CA in ``folder``, created there first when missing."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        ca = cls(folder)
        if ca.cert_path.exists() and ca.key_path.exists():
            load_certificate(ca.cert_path)
            return ca
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=_CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        _write_private(ca.key_path, _key_pem(key))
        ca.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return ca

    def _load(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        cert = load_certificate(self.cert_path)
        try:
            key = serialization.load_pem_private_key(self.key_path.read_bytes(), None)
        except (OSError, ValueError) as exc:
            raise TlsError(f"lab CA key {self.key_path}: {exc}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise TlsError(f"lab CA key {self.key_path}: not an EC key")
        return cert, key

    def issue(
        self,
        names: list[str],
        out_dir: Path,
        *,
        stem: str | None = None,
        days: int = 397,
        not_before: dt.datetime | None = None,
    ) -> ServerFiles:
        """Sign a server certificate for ``names`` (first one is the common name).

        Writes ``<stem>.pem`` (leaf + CA) and ``<stem>-key.pem`` into ``out_dir``.
        """
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        if not names:
            raise TlsError("a server certificate needs at least one name")
        ca_cert, ca_key = self._load()
        key = ec.generate_private_key(ec.SECP256R1())
        start = not_before or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([_san(n) for n in names]), False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
            .sign(ca_key, hashes.SHA256())
        )
        stem = stem or names[0].replace(":", "_")
        files = ServerFiles(out_dir / f"{stem}.pem", out_dir / f"{stem}-key.pem")
        _write_private(files.key, _key_pem(key))
        files.cert.write_bytes(
            cert.public_bytes(serialization.Encoding.PEM)
            + ca_cert.public_bytes(serialization.Encoding.PEM)
        )
        return files


def demo_server_files(ca_folder: Path, host: str) -> tuple[ServerFiles, Path, str]:
    """A certificate for a server on this machine (loopback names and ``host``).

    The CA is kept in ``ca_folder`` across runs (a browser told to trust it once
    keeps working); the server certificate is new each time. Returns the files,
    the CA certificate's path and the certificate's SPKI pin for Chromium.
    """
    from diemcau.tls.context import spki_sha256

    ca = LabCA.open_or_create(ca_folder)
    names = ["127.0.0.1", "localhost", "::1"]
    if host not in names and host not in ("0.0.0.0", "::", ""):  # noqa: S104 - names, not binds
        names.append(host)
    files = ca.issue(names, ca_folder / "server", stem="server")
    return files, ca.cert_path, spki_sha256(files.cert)
