"""``diemcau media ...`` commands: the relay plan for a store's sites; check a deployment."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from diemcau.cliargs import bounded_float, bounded_int
from diemcau.directory.sites import SiteDirectory
from diemcau.media.config import load_nodes, nodes_from_env
from diemcau.media.topology import SiteRef, plan_sites, propose_relays
from diemcau.store import Database

__all__ = ["register", "load_site_refs"]


async def load_site_refs(db: Database) -> list[SiteRef]:
    """Every non-chair, non-revoked site with its province code ("-" without one)."""
    return [
        SiteRef(code=s.code, province=s.province_code or "-", name=s.name)
        for s in await SiteDirectory(db).all()
        if s.kind != "chair"
    ]


async def _plan(url: str, capacity: int, nodes_file: str | None) -> int:
    from diemcau.directory.loaded import require_directory

    db = Database(url)
    try:
        await require_directory(db)
        sites = await load_site_refs(db)
    finally:
        await db.dispose()
    declared = load_nodes(Path(nodes_file)) if nodes_file else nodes_from_env()
    if declared is not None:
        relays = [n for n in declared if n.role == "relay"]
    else:
        relays = propose_relays(sites, capacity)
    plan = plan_sites(sites, relays)
    print(plan.explain())
    return 0 if not plan.unassigned else 1


def _cmd_plan(args: argparse.Namespace) -> int:
    from diemcau.config import Settings

    url = args.db or Settings().resolved_database_url()
    print(f"planning relays for {url}", file=sys.stderr)
    try:
        return asyncio.run(_plan(url, args.capacity, args.nodes))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _cmd_check(args: argparse.Namespace) -> int:
    from diemcau.deploy.check import check_deployment, format_table
    from diemcau.deploy.inventory import Inventory, InventoryError

    path = args.inventory or os.environ.get("DIEMCAU_INVENTORY", "")
    if not path:
        print("error: give --inventory FILE or set DIEMCAU_INVENTORY", file=sys.stderr)
        return 2
    try:
        inv = Inventory.load(Path(path))
        inv.janus_nodes()
        inv.turn_servers()
    except InventoryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rows = asyncio.run(check_deployment(inv, timeout=args.timeout))
    print(format_table(rows))
    return 0 if all(r.ok for r in rows) else 1


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    media = subparsers.add_parser("media", help="media plane: relay plan, deployment check")
    sub = media.add_subparsers(dest="media_command", required=True, metavar="ACTION")
    plan = sub.add_parser(
        "plan", help="print which relay serves which sites (tree with counts per node)"
    )
    plan.add_argument("--db", help="database URL (default: the configured store)")
    plan.add_argument(
        "--capacity", type=bounded_int(1), default=500, help="sites per relay (default 500)"
    )
    plan.add_argument(
        "--nodes",
        help="JSON file of declared nodes (default: DIEMCAU_MEDIA_NODES; "
        "without either, one relay per province is proposed)",
    )
    plan.set_defaults(func=_cmd_plan)
    check = sub.add_parser(
        "check",
        help="check a running deployment: nodes reachable, keys valid, cascade RTP, TURN",
    )
    check.add_argument("--inventory", help="the inventory TOML file (default: DIEMCAU_INVENTORY)")
    check.add_argument(
        "--timeout", type=bounded_float(0.5), default=8.0, help="seconds per check (default 8)"
    )
    check.set_defaults(func=_cmd_check)
