"""``diemcau deploy render``: every host's configuration from the inventory."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from diemcau.deploy.inventory import Inventory, InventoryError
from diemcau.deploy.render import render_all

__all__ = ["register"]


def _render(args: argparse.Namespace) -> int:
    try:
        inv = Inventory.load(Path(args.inventory))
        files = render_all(inv, Path(args.out))
    except (InventoryError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in files:
        print(path)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    deploy = sub.add_parser("deploy", help="deployment: render hosts' configs from an inventory")
    acts = deploy.add_subparsers(dest="deploy_command", required=True, metavar="ACTION")
    r = acts.add_parser("render", help="write each host's Janus/coturn configs and systemd units")
    r.add_argument("--inventory", required=True, help="the inventory TOML file")
    r.add_argument("--out", required=True, help="folder; files go under <out>/<host>/")
    r.set_defaults(func=_render)
