"""Runtime settings, read from the environment (``DIEMCAU_*``) with safe defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Settings", "default_sqlite_url", "env_list"]


def env_list(name: str) -> tuple[str, ...]:
    """A comma-separated environment variable as a tuple (empty items dropped)."""
    return tuple(x.strip() for x in os.environ.get(name, "").split(",") if x.strip())


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def default_sqlite_url(data_dir: Path) -> str:
    """The embedded default store: one SQLite file in the data directory."""
    return f"sqlite+aiosqlite:///{(data_dir / 'diemcau.db').resolve()}"


@dataclass(frozen=True)
class Settings:
    """Server settings.

    Attributes:
        data_dir: where the embedded database, exports and generated configs live.
        database_url: SQLAlchemy URL; SQLite (aiosqlite) or PostgreSQL (asyncpg).
        public_url: base URL printed into join links and QR codes.
        host: HTTP bind address (loopback by default).
        port: HTTP port.
        secret_key: the historical single instance key (``DIEMCAU_SECRET_KEY``, at least
            32 characters). When empty the store's instance secret is used (generated
            once, kept in the database). The token and site keys below replace it
            (`diemcau.instance_keys`, docs/security.md "Keys").
        token_key, token_key_file: the keys that sign session tokens, newest first
            (``DIEMCAU_TOKEN_KEY``, or a file of one key a line: ``DIEMCAU_TOKEN_KEY_FILE``).
        site_key, site_key_file: the keys of the site-secret digests, the same way
            (``DIEMCAU_SITE_KEY``, ``DIEMCAU_SITE_KEY_FILE``).
        media_relays: start a local media plane: one central Janus process and this
            many relays on this host (0: no local media plane). Janus nodes on other
            hosts are declared in the JSON file named by ``DIEMCAU_MEDIA_NODES``.
        tls_cert, tls_key: PEM certificate (chain) and key; when set the HTTP app and
            the site-session socket speak TLS only (``DIEMCAU_TLS_CERT``,
            ``DIEMCAU_TLS_KEY``). A bad file stops the server (`diemcau.tls.TlsError`).
        http_redirect_port: with TLS, also answer plain HTTP on this port with a
            redirect to the HTTPS address (0: none; ``DIEMCAU_HTTP_REDIRECT_PORT``).
        lease: one of a standby pair on one PostgreSQL database: serve only while
            holding the leader lease (``DIEMCAU_LEASE=1``, docs/reliability.md).
        servers: the base URLs of every control server of the pair, in the order site
            terminals try them (``DIEMCAU_SERVERS``, comma-separated).
        presence_urls: their site-socket URLs, same order (``DIEMCAU_PRESENCE_URLS``).
    """

    data_dir: Path = field(default_factory=lambda: Path(os.environ.get("DIEMCAU_DATA", "var")))
    database_url: str = ""
    public_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8080
    secret_key: str = field(default_factory=lambda: os.environ.get("DIEMCAU_SECRET_KEY", ""))
    token_key: str = field(default_factory=lambda: os.environ.get("DIEMCAU_TOKEN_KEY", ""))
    token_key_file: str = field(
        default_factory=lambda: os.environ.get("DIEMCAU_TOKEN_KEY_FILE", "")
    )
    site_key: str = field(default_factory=lambda: os.environ.get("DIEMCAU_SITE_KEY", ""))
    site_key_file: str = field(default_factory=lambda: os.environ.get("DIEMCAU_SITE_KEY_FILE", ""))
    media_relays: int = 0
    tls_cert: str = field(default_factory=lambda: os.environ.get("DIEMCAU_TLS_CERT", ""))
    tls_key: str = field(default_factory=lambda: os.environ.get("DIEMCAU_TLS_KEY", ""))
    http_redirect_port: int = field(
        default_factory=lambda: int(os.environ.get("DIEMCAU_HTTP_REDIRECT_PORT", "0") or 0)
    )
    lease: bool = field(default_factory=lambda: _env_flag("DIEMCAU_LEASE"))
    servers: tuple[str, ...] = field(default_factory=lambda: env_list("DIEMCAU_SERVERS"))
    presence_urls: tuple[str, ...] = field(
        default_factory=lambda: env_list("DIEMCAU_PRESENCE_URLS")
    )

    @property
    def tls(self) -> bool:
        """Whether the browser-facing listeners speak TLS."""
        return bool(self.tls_cert or self.tls_key)

    def resolved_database_url(self) -> str:
        return (
            self.database_url or os.environ.get("DIEMCAU_DB") or default_sqlite_url(self.data_dir)
        )

    def resolved_public_url(self) -> str:
        scheme = "https" if self.tls else "http"
        return (self.public_url or f"{scheme}://{self.host}:{self.port}").rstrip("/")
