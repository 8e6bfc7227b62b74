"""``diemcau media check``: is a running deployment fit for a meeting? A table says.

From the inventory, the way the control server will use each part:

- every Janus node: ``api`` (its ``wss`` listener verifies with the inventory's
  CA or the system's, ``info`` answers with the node's own name, a session
  opens with a token signed by its ``token_secret``), ``admin`` (Admin API
  ``get_status`` with its ``admin_secret``) and ``admin_key`` (a throwaway
  room created and destroyed with the plugins' ``admin_key``);
- every relay: ``cascade`` (`probe_cascade`: a synthetic feed published at
  central reaches a subscriber on the relay through a remote publisher);
- every TURN server: ``turn udp``, ``turn tcp``, ``turn tls`` (a real
  allocation with REST credentials from its secret, `allocate`).

Each row: node, check, ok or FAIL, a one-line detail, the time it took. Nothing
is left behind on the nodes (rooms, remote publishers, sessions, allocations).
"""

from __future__ import annotations

import asyncio
import functools
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from diemcau.deploy.inventory import Inventory
from diemcau.media.control import NodeControl
from diemcau.media.node import JanusNode
from diemcau.media.probe import probe_cascade
from diemcau.media.turn import TurnServer
from diemcau.media.turn_probe import Transport, allocate
from diemcau.tls.context import client_context

__all__ = ["CheckRow", "check_deployment", "format_table"]


@dataclass(frozen=True)
class CheckRow:
    """One line of the table."""

    node: str
    check: str
    ok: bool
    detail: str
    ms: float


def _why(exc: BaseException) -> str:
    """One line for an exception: its message, or its kind when it has none."""
    text = str(exc).strip()
    if isinstance(exc, ConnectionRefusedError):
        text = "connection refused"
    elif isinstance(exc, TimeoutError) and not text:
        text = "timed out"
    return (text.splitlines()[0] if text else type(exc).__name__)[:160]


async def _timed(
    node: str, check: str, action: Callable[[], Awaitable[str]], timeout: float
) -> CheckRow:
    t0 = time.monotonic()
    try:
        detail = await asyncio.wait_for(action(), timeout)
    except Exception as exc:
        return CheckRow(node, check, False, _why(exc), (time.monotonic() - t0) * 1000)
    return CheckRow(node, check, True, detail, (time.monotonic() - t0) * 1000)


async def _api(node: JanusNode) -> str:
    conn = await node.connect()
    try:
        info = await conn.info()
        name = str(info.get("server-name", ""))
        if name and name != node.name:
            raise RuntimeError(f"the node at {node.ws_url} calls itself {name!r}")
        session = await conn.create_session()
        await session.destroy()
    finally:
        await conn.close()
    return f"Janus {info.get('version_string', '?')}, signed token accepted"


async def _admin(node: JanusNode) -> str:
    admin = await node.connect_admin()
    try:
        status = await admin.get_status()
    finally:
        await admin.close()
    return f"get_status ok (session timeout {status.get('session_timeout', '?')} s)"


async def _admin_key(node: JanusNode) -> str:
    ctl = NodeControl(node)
    room = secrets.randbits(47) | 1
    try:
        await ctl.ensure_room(room, "diemcau check")
        await ctl.destroy_room(room)
    finally:
        await ctl.close()
    return "room created and destroyed"


async def _turn(
    server: TurnServer, transport: Transport, ca: Path | None, timeout: float
) -> CheckRow:
    t0 = time.monotonic()
    check = f"turn {transport}"
    if transport == "tls" and not server.tls_port:
        return CheckRow(server.name, check, False, "no TLS listener declared", 0.0)
    try:
        ctx = client_context(ca) if transport == "tls" else None
        relayed, ms = await allocate(server, transport, ssl_context=ctx, timeout=timeout)
    except Exception as exc:
        return CheckRow(server.name, check, False, _why(exc), (time.monotonic() - t0) * 1000)
    port = server.tls_port if transport == "tls" else server.port
    return CheckRow(server.name, check, True, f"{server.host}:{port} relays at {relayed}", ms)


async def check_deployment(inv: Inventory, *, timeout: float = 8.0) -> list[CheckRow]:
    """Every row of the table, nodes first (in inventory order), then cascade, then TURN."""
    nodes = inv.janus_nodes()
    node_checks = (("api", _api), ("admin", _admin), ("admin_key", _admin_key))
    rows = list(
        await asyncio.gather(
            *(
                _timed(n.name, name, functools.partial(action, n), timeout)
                for n in nodes
                for name, action in node_checks
            )
        )
    )
    central = next(n for n in nodes if n.role == "central")
    relays = [n for n in nodes if n.role == "relay"]
    if relays:
        t0 = time.monotonic()
        try:
            probed = await asyncio.wait_for(
                probe_cascade(central, relays, timeout=timeout), 3 * timeout
            )
        except Exception as exc:
            why = f"probe stopped: {_why(exc)}"
            ms = (time.monotonic() - t0) * 1000
            rows += [CheckRow(r.name, "cascade", False, why, ms) for r in relays]
        else:
            for r in relays:
                p = probed[r.name]
                rows.append(
                    CheckRow(r.name, "cascade", p.ok, f"from {central.name}: {p.detail}", p.ms)
                )
    ca = Path(inv.control.ca) if inv.control.ca else None
    transports: tuple[Transport, ...] = ("udp", "tcp", "tls")
    rows += await asyncio.gather(
        *(_turn(t, tr, ca, timeout) for t in inv.turn_servers() for tr in transports)
    )
    return rows


def format_table(rows: list[CheckRow]) -> str:
    """The rows as a fixed-width table (node, check, ok/FAIL, detail, ms)."""
    head = ("node", "check", "result", "detail", "ms")
    cells = [(r.node, r.check, "ok" if r.ok else "FAIL", r.detail, f"{r.ms:.0f}") for r in rows]
    widths = [max(len(c[i]) for c in [head, *cells]) for i in range(4)]
    lines = []
    for c in [head, *cells]:
        left = "  ".join(c[i].ljust(widths[i]) for i in range(4))
        lines.append(f"{left}  {c[4]:>6}")
    failed = sum(1 for r in rows if not r.ok)
    lines.append(f"{len(rows) - failed} ok, {failed} failed")
    return "\n".join(lines)
