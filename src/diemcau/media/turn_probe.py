"""A real TURN allocation with REST credentials, over UDP, TCP or TLS.

What a browser behind a strict firewall does first: Allocate on the TURN
server with the credentials a grant carries (`turn_credentials`). aioice's
TURN client (aiortc's ICE) makes the allocation and deletes it again, so a
success proves the server listens on that transport, its TLS certificate
verifies, and it accepts the shared secret.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Literal

from aioice.turn import TurnClientTcpProtocol, TurnClientUdpProtocol

from diemcau.media.turn import TurnServer, turn_credentials

__all__ = ["Transport", "allocate"]

Transport = Literal["udp", "tcp", "tls"]


async def allocate(
    server: TurnServer,
    transport: Transport,
    *,
    ssl_context: ssl.SSLContext | None = None,
    timeout: float = 5.0,
    label: str = "check",
) -> tuple[str, float]:
    """Allocate and release once; returns (relayed address, ms to allocate).

    Raises `OSError` (refused, closed, a TLS failure), `TimeoutError` or
    aioice's ``TransactionFailed`` (e.g. 401 for a wrong secret).
    """
    if transport == "tls" and not server.tls_port:
        raise ValueError(f"TURN {server.name} has no TLS port")
    addr = (server.host, server.tls_port if transport == "tls" else server.port)
    username, password = turn_credentials(server.secret, label, int(time.time()) + 300)
    args = (addr, username, password, 60, 60)
    loop = asyncio.get_running_loop()
    t0 = time.monotonic()
    client: TurnClientUdpProtocol | TurnClientTcpProtocol
    if transport == "udp":
        _, client = await asyncio.wait_for(
            loop.create_datagram_endpoint(lambda: TurnClientUdpProtocol(*args), remote_addr=addr),
            timeout,
        )
    else:
        tls = (ssl_context or ssl.create_default_context()) if transport == "tls" else None
        _, client = await asyncio.wait_for(
            loop.create_connection(lambda: TurnClientTcpProtocol(*args), *addr, ssl=tls),
            timeout,
        )
    try:
        host, port = await asyncio.wait_for(client.connect(), timeout)
        ms = (time.monotonic() - t0) * 1000
    finally:
        if client.relayed_address is not None:
            await asyncio.wait_for(client.delete(), timeout)
        else:
            client.transport.close()
    return f"{host}:{port}", ms
