"""``diemcau demo``: the command line of the demo (options and help)."""

from __future__ import annotations

import argparse

from diemcau.cliargs import port

__all__ = ["register"]

DESCRIPTION = """\
A live national meeting on this machine, in one command (docs/demo.md). Browsers
reach it over HTTPS with a lab CA kept beside the data folder (--no-tls: plain
HTTP on loopback; --tls-cert/--tls-key: your own certificate).

1. a fresh SQLite store with the directory loaded, a credential for every site
   (--sheets also prints the provisioning sheets with QR codes, ~30 s for the
   whole country) and the staff accounts admin, chair, operator;
2. a local media plane (one central and --relays relay Janus processes) declared
   to the control server as its media nodes: if Janus cannot start, the demo
   says so and goes on with the control plane only;
3. a live meeting "Họp trực tuyến toàn quốc" inviting the whole country,
   started by the chair through the meetings service;
4. two child processes, so the server keeps a core of its own: the control-plane
   simulator (every other site: a session, heartbeats, link reports, a
   meeting.join), and the media sites (--media-sites, spread over the relays: a
   session, a meeting.join and a real aiortc publisher on their relay, fetched
   through the same HTTP grants a browser uses) plus the chair's publisher on
   central, which hands the chair feed over when a person opens /chair;
5. floor rotation among the media sites every --floor-every seconds, through
   the meetings service (audit log, site terminals and media plane all see it),
   and a few situation reports and one directive for the dashboard.

Stops cleanly on Ctrl-C or after --duration: children by PID, then the server,
then the Janus processes.
"""


def _run(args: argparse.Namespace) -> int:
    from diemcau.demo.run import run

    return run(args)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``demo`` to the ``diemcau`` command line."""
    p = sub.add_parser(
        "demo",
        help="run a live national meeting on this machine",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--dataset", default="vn-2025", choices=["vn-2025", "vn-legacy", "south-19"])
    p.add_argument("--data", default="var/demo", help="data directory (recreated unless --keep)")
    p.add_argument("--keep", action="store_true", help="keep an existing demo data directory")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=port, default=8080)
    p.add_argument("--relays", type=int, default=3, help="local relay Janus processes")
    p.add_argument("--no-media", action="store_true", help="control plane only (no Janus)")
    p.add_argument(
        "--no-tls",
        action="store_true",
        help="plain http:// and ws:// (loopback only; default: HTTPS with a lab CA)",
    )
    p.add_argument("--tls-cert", default="", help="use this certificate instead of a lab CA's")
    p.add_argument("--tls-key", default="", help="its key")
    p.add_argument(
        "--media-sites", type=int, default=12, help="sites with real synthetic media (aiortc)"
    )
    p.add_argument(
        "--sim-sites", type=int, default=-1, help="limit the control-plane simulated sites"
    )
    p.add_argument("--floor-every", type=float, default=20.0, help="floor rotation, seconds")
    p.add_argument(
        "--sheets", action="store_true", help="print provisioning sheets with QR codes (~30 s)"
    )
    p.add_argument(
        "--isolated",
        action="store_true",
        help="run inside a private network namespace on loopback addresses (needs root)",
    )
    p.add_argument("--duration", type=float, default=0, help="stop after this many seconds")
    p.set_defaults(func=_run)
