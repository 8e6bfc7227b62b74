"""``diemcau serve``: the control server."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from diemcau.config import Settings

__all__ = ["register", "add_server_options", "settings_from_args"]


def add_server_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", default="", help="database URL (default: SQLite in the data dir)")
    p.add_argument("--data", default="", help="data directory (default: ./var or $DIEMCAU_DATA)")
    p.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default: loopback)")
    p.add_argument("--port", type=int, default=8080, help="HTTP port (default: 8080)")
    p.add_argument("--public-url", default="", help="base URL for join links")
    p.add_argument(
        "--tls-cert",
        default=None,
        help="PEM certificate (chain) for HTTPS and wss:// (default: $DIEMCAU_TLS_CERT)",
    )
    p.add_argument("--tls-key", default=None, help="its key (default: $DIEMCAU_TLS_KEY)")
    p.add_argument(
        "--http-redirect-port",
        type=int,
        default=None,
        help="with TLS, redirect plain HTTP on this port to HTTPS (e.g. 80)",
    )
    p.add_argument(
        "--media-relays",
        type=int,
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
    for name in ("tls_cert", "tls_key", "http_redirect_port"):
        value = getattr(args, name, None)
        if value is not None:
            kwargs[name] = value
    if args.data:
        kwargs["data_dir"] = Path(args.data)
    return Settings(**kwargs)


def _serve(args: argparse.Namespace) -> int:
    from diemcau.api.server import serve
    from diemcau.tls import TlsError

    settings = settings_from_args(args)
    print(f"diemcau: serving on {settings.resolved_public_url()}", file=sys.stderr)
    try:
        asyncio.run(serve(settings))
    except TlsError as exc:
        print(f"diemcau: {exc}", file=sys.stderr)
        return 2
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the control server (HTTP API, web pages, sessions)")
    add_server_options(p)
    p.set_defaults(func=_serve)
