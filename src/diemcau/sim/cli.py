"""``diemcau sim``: run simulated sites against a control server.

Join codes come from one of:

* ``--codes FILE``: the CSV export of ``diemcau provision`` (a file or the
  folder of per-province files), or a text file with one join code per line;
* ``--db URL``: the server's database. The simulator gives the dataset's sites
  **new credentials** (their old join codes stop working, live sessions of
  those sites are closed) and uses them. Meant for demos and benchmarks on a
  throwaway database, never a production one. ``--save-codes FILE`` keeps them.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import secrets
import sys
import urllib.request
from pathlib import Path

from sqlalchemy import bindparam, select, update

from diemcau.accounts.service import join_code
from diemcau.cliargs import bounded_float, bounded_int
from diemcau.config import Settings
from diemcau.instance_keys import load_instance_keys
from diemcau.records import JsonObject
from diemcau.security import new_site_secret, site_secret_digest
from diemcau.sim.sites import SimOptions, Swarm, read_join_codes
from diemcau.store import Database, migrate
from diemcau.store.models import Site, Unit, utcnow

__all__ = ["register", "provision_sim_codes", "resolve_site_url"]


def _say(msg: str) -> None:
    print(f"[sim] {msg}", file=sys.stderr, flush=True)


def resolve_site_url(url: str) -> str:
    """A ``ws://`` URL as is; for an ``http(s)://`` server, ask GET /api/presence/info."""
    if url.startswith(("ws://", "wss://")):
        return url
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"--url must be ws://, wss://, http:// or https:// (got {url!r})")
    info_url = url.rstrip("/") + "/api/presence/info"
    with urllib.request.urlopen(info_url, timeout=10) as resp:  # noqa: S310 - scheme checked
        info: JsonObject = json.load(resp)
    return str(info["url"])


async def provision_sim_codes(db_url: str, dataset: str | None, limit: int | None) -> list[str]:
    """Give the dataset's sites fresh credentials in one transaction; return the join codes."""
    from diemcau.directory.loaded import require_directory

    await migrate(db_url)
    db = Database(db_url)
    try:
        await require_directory(db)
        key = (await load_instance_keys(Settings(database_url=db_url), db)).site
        async with db.session() as s:
            q = (
                select(Site.id, Site.code)
                .join(Unit, Unit.id == Site.unit_id)
                .where(Site.kind != "chair")  # the central site is the chair's, not simulated
                .order_by(Site.id)
            )
            if dataset:
                q = q.where(Unit.dataset == dataset)
            if limit:
                q = q.limit(limit)
            rows = (await s.execute(q)).all()
            issued = utcnow()
            codes: list[str] = []
            params: list[JsonObject] = []
            for site_id, code in rows:
                secret = new_site_secret()
                codes.append(join_code(code, secret))
                params.append({"sid": site_id, "digest": site_secret_digest(key, secret)})
            if params:
                stmt = (
                    update(Site)
                    .where(Site.id == bindparam("sid"))
                    .values(
                        secret_digest=bindparam("digest"),
                        secret_key_id=key.current_id,
                        credential_version=Site.credential_version + 1,
                        credential_issued_at=issued,
                        revoked=False,
                    )
                )
                conn = await s.connection()
                await conn.execute(stmt, params)
        return codes
    finally:
        await db.dispose()


def _run(args: argparse.Namespace) -> int:
    if bool(args.codes) == bool(args.db):
        _say("give exactly one of --codes FILE or --db URL")
        return 2
    if args.codes:
        codes = read_join_codes(Path(args.codes))
    else:
        _say(f"issuing new credentials for the {args.dataset or 'all'} sites in {args.db}")
        codes = asyncio.run(provision_sim_codes(args.db, args.dataset, args.sites))
        if args.save_codes:
            Path(args.save_codes).write_text("\n".join(codes) + "\n", encoding="utf-8")
    if args.sites:
        codes = codes[: args.sites]
    if not codes:
        where = f"--codes {args.codes}" if args.codes else f"dataset {args.dataset} in --db"
        _say(f"no join codes in {where}: nothing to simulate")
        return 1
    try:
        url = resolve_site_url(args.url)
    except (OSError, ValueError, KeyError) as exc:
        _say(f"cannot find the site socket: {exc}")
        return 1
    _say(f"{len(codes)} sites -> {url} (flaky {args.flaky}/site/min)")
    options = SimOptions(
        flaky=args.flaky,
        join_rate=args.rate,
        summary_s=args.summary,
        seed=args.seed if args.seed is not None else secrets.randbits(32),
        protocol=args.protocol,
    )
    # Thousands of long-lived connections: keep full collections rare, or their
    # pauses make this process miss heartbeats (see docs/performance.md).
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
    swarm = Swarm(url, codes, options)
    try:
        asyncio.run(swarm.run(duration=args.duration or None))
    except KeyboardInterrupt:
        _say("stopped")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "sim",
        help="run simulated sites (control plane) against a server",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--url",
        required=True,
        help="server base URL (http://127.0.0.1:8080) or the site socket URL (ws://.../site)",
    )
    p.add_argument("--dataset", default="vn-2025", help="dataset whose sites to run (--db mode)")
    p.add_argument("--sites", type=bounded_int(0), default=0, help="run only the first N sites")
    p.add_argument(
        "--flaky",
        type=bounded_float(0),
        default=0.0,
        help="faults per site per minute (drop/silent/degrade)",
    )
    p.add_argument(
        "--rate",
        type=bounded_float(0),
        default=500.0,
        help="first joins per second (0: all at once)",
    )
    p.add_argument("--codes", help="provisioning CSV export (file or folder) or one code per line")
    p.add_argument("--db", help="database URL: issue fresh credentials for simulated sites")
    p.add_argument("--save-codes", help="with --db: write the issued join codes to this file")
    p.add_argument(
        "--duration", type=bounded_float(0), default=0, help="stop after this many seconds"
    )
    p.add_argument(
        "--summary", type=bounded_float(0.1), default=2.0, help="summary line interval, seconds"
    )
    p.add_argument("--seed", type=int, default=None, help="random seed for repeatable runs")
    p.add_argument(
        "--protocol",
        type=int,
        choices=(1, 2),
        default=1,
        help="protocol version: 1 (1 s heartbeats, default: many sites per process), "
        "2 (sub-second heartbeats, as browsers)",
    )
    p.set_defaults(func=_run)
