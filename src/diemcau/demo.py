"""``diemcau demo``: a live national meeting on one machine, in one command.

Loads the directory into a fresh SQLite database, provisions every site, creates
staff accounts, starts the control server, and (where available) local Janus
nodes and simulated sites. Prints the URL and a staff login.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from diemcau.config import Settings
from diemcau.store import Database, migrate

__all__ = ["register", "prepare"]


def _say(msg: str) -> None:
    print(f"[demo] {msg}", file=sys.stderr, flush=True)


async def prepare(settings: Settings, dataset: str, password: str) -> dict[str, Any]:
    """Fresh store with the directory, every site provisioned, and staff accounts."""
    from diemcau.accounts.service import create_staff
    from diemcau.directory import datasets, service
    from diemcau.directory.provision import provision

    url = settings.resolved_database_url()
    await migrate(url)
    db = Database(url)
    try:
        t0 = time.perf_counter()
        records = datasets.load_dataset(dataset)
        await service.load_units(db, records, dataset=dataset)
        stats = await service.stats(db)
        _say(f"directory {dataset}: {stats} in {time.perf_counter() - t0:.1f} s")
        key = await db.secret_key(settings.secret_key)
        t0 = time.perf_counter()
        out = settings.data_dir / "provision"
        result = await provision(db, key, settings.resolved_public_url(), out)
        _say(f"provisioned sites in {time.perf_counter() - t0:.1f} s -> {out}/index.html")
        for username, role in (("admin", "admin"), ("chair", "chair"), ("operator", "operator")):
            await create_staff(db, username, password, role, display_name=username.title())
        return {"stats": stats, "provision": result, "key": key}
    finally:
        await db.dispose()


def _run(args: argparse.Namespace) -> int:
    if args.isolated:
        from diemcau.media.isolation import enter_isolated_netns

        enter_isolated_netns()
        _say(f"running in a private network namespace: nsenter --net=/proc/{os.getpid()}/ns/net")
    data = Path(args.data)
    if data.exists() and not args.keep:
        shutil.rmtree(data)
    data.mkdir(parents=True, exist_ok=True)
    settings = Settings(data_dir=data, host=args.host, port=args.port)
    password = os.environ.get("DIEMCAU_DEMO_PASSWORD") or secrets.token_urlsafe(9)

    async def main() -> None:
        from diemcau.api.server import serve

        await prepare(settings, args.dataset, password)
        stop = asyncio.Event()

        async def ready(_runtime: Any) -> None:
            base = settings.resolved_public_url()
            print(f"diemcau demo is running: {base}/", flush=True)
            print(f"staff login: chair / {password}  (also admin, operator)", flush=True)
            if args.duration:
                asyncio.get_running_loop().call_later(args.duration, stop.set)

        await serve(settings, on_ready=ready, stop=stop)

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        _say("stopped")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="run a live national meeting on this machine")
    p.add_argument("--dataset", default="vn-2025", choices=["vn-2025", "vn-legacy", "south-19"])
    p.add_argument("--data", default="var/demo", help="data directory (recreated unless --keep)")
    p.add_argument("--keep", action="store_true", help="keep an existing demo data directory")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument(
        "--isolated",
        action="store_true",
        help="run inside a private network namespace on loopback addresses (needs root)",
    )
    p.add_argument("--duration", type=float, default=0, help="stop after this many seconds")
    p.set_defaults(func=_run)
