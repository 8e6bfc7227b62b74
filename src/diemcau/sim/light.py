"""A light swarm of site sessions for benchmarks: raw WebSocket over asyncio protocols.

A benchmark of the control server must measure the server, not its clients. The
full simulator (`diemcau.sim.sites`) runs the `websockets` client per site and
decodes every frame as JSON; at 10,794 sites that costs more than the server it
measures. Here every site is one `asyncio.Protocol` with prebuilt bytes: the
upgrade request, its hello frame, one heartbeat frame written to every site.
Server frames are cut by hand and only the welcome is decoded; every other
payload goes to the benchmark's `on_payload` as bytes, which looks for the few
markers it needs (``b'"kind":"floor.changed"'``) without decoding the rest.
Benchmarks spread sites over several processes, each running one swarm
(docs/performance.md).

The client mask key is zero: RFC 6455 lets a client pick any 32-bit key, and
with zero the payload is sent as is, so no per-frame XOR costs client time.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from collections.abc import Callable
from typing import cast

__all__ = ["LightSite", "LightSwarm", "client_text_frame"]

HEARTBEAT = b'{"type":"hb"}'


def client_text_frame(payload: bytes) -> bytes:
    """A masked client text frame with an all-zero mask key (payload left as is)."""
    n = len(payload)
    if n < 126:
        head = bytes((0x81, 0x80 | n))
    elif n < 65536:
        head = bytes((0x81, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x81, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + b"\x00\x00\x00\x00" + payload


class LightSite(asyncio.Protocol):
    """One site's socket: upgrade, hello, then frames cut by hand."""

    __slots__ = ("swarm", "index", "transport", "buf", "upgraded", "welcomed", "site_id", "closed")

    def __init__(self, swarm: LightSwarm, index: int) -> None:
        self.swarm = swarm
        self.index = index
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.upgraded = False
        self.welcomed = False
        self.site_id = -1
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.swarm.upgrade)

    def send_text(self, payload: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(client_text_frame(payload))

    def data_received(self, data: bytes) -> None:
        if not self.upgraded:
            self.buf += data
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.buf.startswith(b"HTTP/1.1 101"):
                self.swarm.refused(self)
                return
            rest = self.buf[end + 4 :]
            self.buf = b""
            self.upgraded = True
            assert self.transport is not None
            self.transport.write(self.swarm.hellos[self.index])
            if not rest:
                return
            data = rest
        buf = self.buf + data if self.buf else data
        pos, n = 0, len(buf)
        swarm = self.swarm
        while n - pos >= 2:
            b1 = buf[pos + 1] & 0x7F
            if b1 == 126:
                if n - pos < 4:
                    break
                size, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif b1 == 127:
                if n - pos < 10:
                    break
                size, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            else:
                size, head = b1, 2
            if n - pos < head + size:
                break
            opcode = buf[pos] & 0x0F
            payload = buf[pos + head : pos + head + size]
            pos += head + size
            if opcode == 0x8:  # close: answer by dropping the socket
                if self.transport is not None:
                    self.transport.close()
            elif opcode == 0x1:
                if self.welcomed:
                    swarm.on_payload(self, payload)
                else:
                    swarm.welcome(self, payload)
        self.buf = buf[pos:]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.swarm.lost(self)


class LightSwarm:
    """Many light sites in one process; heartbeats at the interval their welcome says.

    Args:
        host, port, path: the site socket.
        codes: one join code per site.
        version: the protocol version the hellos claim (2 follows sub-second intervals).
        on_payload: called with every text frame after the welcome, as bytes.
        concurrency: handshakes in flight at once.
    """

    def __init__(
        self,
        host: str,
        port: int,
        path: str,
        codes: list[str],
        *,
        version: int = 2,
        on_payload: Callable[[LightSite, bytes], None] | None = None,
        concurrency: int = 1000,
    ) -> None:
        self.host, self.port = host, port
        key = base64.b64encode(secrets.token_bytes(16)).decode()
        self.upgrade = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        self.hellos = [
            client_text_frame(json.dumps({"type": "hello", "v": version, "join_code": c}).encode())
            for c in codes
        ]
        self.hb = client_text_frame(HEARTBEAT)
        self.sites: list[LightSite] = []
        self.n = len(codes)
        self.welcomed = 0
        self.failed = 0
        self.lost_count = 0
        self.heartbeats_sent = 0
        self.heartbeat_s = 1.0
        self.silent: set[int] = set()
        self._on_payload = on_payload
        self._all_in = asyncio.Event()
        self._gate = asyncio.Semaphore(concurrency)

    # --- events from the sites ---------------------------------------------------------------

    def welcome(self, site: LightSite, payload: bytes) -> None:
        msg = json.loads(payload)
        if msg.get("type") != "welcome":
            self.refused(site)
            return
        site.welcomed = True
        site.site_id = int(msg["site_id"])
        self.heartbeat_s = float(msg.get("heartbeat_s", self.heartbeat_s))
        self.welcomed += 1
        self._gate.release()
        self._check_all_in()

    def on_payload(self, site: LightSite, payload: bytes) -> None:
        if self._on_payload is not None:
            self._on_payload(site, payload)

    def refused(self, site: LightSite) -> None:
        self.failed += 1
        if site.transport is not None:
            site.transport.close()

    def lost(self, site: LightSite) -> None:
        self.lost_count += 1
        if not site.welcomed:
            self.failed += 1
            self._gate.release()
            self._check_all_in()

    def _check_all_in(self) -> None:
        if self.welcomed + self.failed >= self.n:
            self._all_in.set()

    # --- driving -----------------------------------------------------------------------------

    async def connect_all(self, timeout: float = 180) -> float:
        """Connect every site; seconds from the first attempt to the last welcome.

        Gives up waiting after `timeout` seconds (then fewer than all are welcomed).
        """
        loop = asyncio.get_running_loop()
        t0 = time.monotonic()
        try:
            async with asyncio.timeout(timeout):
                for i in range(self.n):
                    await self._gate.acquire()
                    site = LightSite(self, i)
                    self.sites.append(site)
                    try:
                        await loop.create_connection(lambda s=site: s, self.host, self.port)  # type: ignore[misc]
                    except OSError:
                        self.failed += 1
                        self._gate.release()
                        self._check_all_in()
                await self._all_in.wait()
        except TimeoutError:
            pass
        return time.monotonic() - t0

    async def heartbeats(self) -> None:
        """One heartbeat per welcomed, non-silent site every `heartbeat_s`, in ten slices."""
        slices = 10
        tick = 0
        hb = self.hb
        while True:
            await asyncio.sleep(self.heartbeat_s / slices)
            part = tick % slices
            tick += 1
            silent = self.silent
            sent = 0
            for site in self.sites[part::slices]:
                if site.welcomed and not site.closed and site.index not in silent:
                    assert site.transport is not None
                    site.transport.write(hb)
                    sent += 1
            self.heartbeats_sent += sent

    def silence(self, k: int) -> list[int]:
        """Stop heartbeats of `k` welcomed sites spread over the swarm; their site ids."""
        step = max(1, self.n // max(1, k))
        picked = [s for s in self.sites[::step] if s.welcomed and not s.closed][:k]
        self.silent.update(s.index for s in picked)
        return [s.site_id for s in picked]

    def close(self) -> None:
        for site in self.sites:
            if site.transport is not None:
                site.transport.abort()
