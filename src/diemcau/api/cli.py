"""``diemcau serve``: the control server."""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
from pathlib import Path
from typing import Any

from diemcau.cliargs import Subparsers, bounded_int, port
from diemcau.config import Settings
from diemcau.errors import DomainError

__all__ = ["register", "add_server_options", "settings_from_args"]


def add_server_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", default="", help="database URL (default: SQLite in the data dir)")
    p.add_argument("--data", default="", help="data directory (default: ./var or $DIEMCAU_DATA)")
    p.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default: loopback)")
    p.add_argument("--port", type=port, default=8080, help="HTTP port (default: 8080)")
    p.add_argument("--public-url", default="", help="base URL for join links")
    p.add_argument(
        "--tls-cert",
        default=None,
        help="PEM certificate (chain) for HTTPS and wss:// (default: $DIEMCAU_TLS_CERT)",
    )
    p.add_argument("--tls-key", default=None, help="its key (default: $DIEMCAU_TLS_KEY)")
    p.add_argument(
        "--http-redirect-port",
        type=port,
        default=None,
        help="with TLS, redirect plain HTTP on this port to HTTPS (e.g. 80)",
    )
    p.add_argument(
        "--lease",
        action="store_true",
        default=None,
        help="one of a standby pair on one PostgreSQL database: serve only while holding "
        "the leader lease, stand by otherwise (default: $DIEMCAU_LEASE)",
    )
    p.add_argument(
        "--servers",
        default=None,
        help="the pair's base URLs, comma-separated, in the order sites try them "
        "(default: $DIEMCAU_SERVERS)",
    )
    p.add_argument(
        "--presence-urls",
        default=None,
        help="the pair's site-socket URLs, same order (default: $DIEMCAU_PRESENCE_URLS)",
    )
    p.add_argument(
        "--media-relays",
        type=bounded_int(0, 64),
        default=0,
        help="start local Janus nodes: a central and this many relays (0: none; nodes on "
        "other hosts are declared in the JSON file named by DIEMCAU_MEDIA_NODES)",
    )


def settings_from_args(args: argparse.Namespace) -> Settings:
    kwargs: dict[str, Any] = {
        "database_url": args.db,
        "host": args.host,
        "port": args.port,
        "public_url": args.public_url,
        "media_relays": getattr(args, "media_relays", 0),
    }
    for name in ("tls_cert", "tls_key", "http_redirect_port", "lease"):
        value = getattr(args, name, None)
        if value is not None:
            kwargs[name] = value
    for name in ("servers", "presence_urls"):
        value = getattr(args, name, None)
        if value is not None:
            kwargs[name] = tuple(x.strip() for x in value.split(",") if x.strip())
    if args.data:
        kwargs["data_dir"] = Path(args.data)
    return Settings(**kwargs)


async def _check_store(url: str) -> None:
    """Migrate, then refuse a store without sites before any port is opened."""
    from diemcau.directory.loaded import require_directory
    from diemcau.store import Database, migrate

    await migrate(url)
    db = Database(url)
    try:
        await require_directory(db)
    finally:
        await db.dispose()


def _check_ports(host: str, http_port: int, redirect_port: int | None = None) -> None:
    """Refuse in one line a port another process holds, before the server starts.

    The site-session socket binds during the app's start-up, where a failure would
    end in a framework traceback; binding both ports here first says which one is
    taken. (Another process may still take one in between: then the server's own
    error follows.)
    """
    text = os.environ.get("DIEMCAU_PRESENCE_PORT", "").strip()
    ports = [("HTTP", host, http_port)]
    presence = int(text) if text.isdigit() else http_port + 1
    if presence:
        where = os.environ.get("DIEMCAU_PRESENCE_HOST", "") or host
        ports.append(
            ("site sessions (DIEMCAU_PRESENCE_PORT, default HTTP port + 1)", where, presence)
        )
    if redirect_port:
        ports.append(("the HTTP to HTTPS redirect", host, redirect_port))
    for what, host, number in ports:
        try:
            infos = socket.getaddrinfo(host, number, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise DomainError(f"--host {host}: {exc.strerror or exc}") from None
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                raise DomainError(
                    f"cannot listen on {host}:{number} for {what}: {exc.strerror or exc}; "
                    "stop the process that holds it or choose another --port"
                ) from None


def _serve(args: argparse.Namespace) -> int:
    from diemcau.api.server import serve
    from diemcau.presence.tuning import run_with_loop
    from diemcau.tls import TlsError
    from diemcau.tls.settings import server_context_for

    settings = settings_from_args(args)
    try:
        server_context_for(settings)  # the certificate first, before the store is touched
    except TlsError as exc:
        print(f"diemcau: {exc}", file=sys.stderr)
        return 2
    asyncio.run(_check_store(settings.resolved_database_url()))
    _check_ports(
        settings.host, settings.port, settings.http_redirect_port if settings.tls else None
    )
    print(f"diemcau: serving on {settings.resolved_public_url()}", file=sys.stderr)
    try:
        run_with_loop(serve(settings))  # uvloop: docs/performance.md
    except TlsError as exc:
        print(f"diemcau: {exc}", file=sys.stderr)
        return 2
    return 0


def register(sub: Subparsers) -> None:
    p = sub.add_parser("serve", help="run the control server (HTTP API, web pages, sessions)")
    add_server_options(p)
    p.set_defaults(func=_serve)
