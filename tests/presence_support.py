"""Helpers for the presence tests: a provisioned directory and a raw protocol client."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from diemcau.accounts.service import join_code
from diemcau.presence.hub import PresenceConfig, PresenceHub
from diemcau.security import new_site_secret, site_secret_digest
from diemcau.store import Database
from diemcau.store.models import Site, Unit
from diemcau.text import fold


@dataclass
class Directory:
    """Sites made for a test: ids, join codes and province ids by site code."""

    site_ids: list[int] = field(default_factory=list)
    codes: dict[int, str] = field(default_factory=dict)
    provinces: list[int] = field(default_factory=list)
    province_of: dict[int, int] = field(default_factory=dict)


async def make_sites(db: Database, key: bytes, per_province: int, provinces: int = 1) -> Directory:
    """Provision `provinces` provinces with `per_province` commune sites each."""
    out = Directory()
    secrets: dict[str, str] = {}
    async with db.session() as s:
        country = Unit(code="VN", name="Việt Nam", search_key="viet nam", level="country")
        s.add(country)
        await s.flush()
        for p in range(provinces):
            prov = Unit(
                code=f"P{p:02d}",
                name=f"Tỉnh {p}",
                search_key=fold(f"Tỉnh {p}"),
                level="province",
                parent_id=country.id,
                depth=1,
            )
            s.add(prov)
            await s.flush()
            prov.province_id = prov.id
            out.provinces.append(prov.id)
            for c in range(per_province):
                code = f"P{p:02d}C{c:04d}"
                unit = Unit(
                    code=code,
                    name=f"Xã {code}",
                    search_key=fold(f"Xã {code}"),
                    level="commune",
                    parent_id=prov.id,
                    province_id=prov.id,
                    depth=2,
                )
                s.add(unit)
                await s.flush()
                secret = new_site_secret()
                secrets[code] = secret
                site = Site(
                    code=code,
                    name=f"Xã {code}",
                    search_key=fold(f"Xã {code}"),
                    unit_id=unit.id,
                    province_id=prov.id,
                    kind="commune",
                    secret_digest=site_secret_digest(key, secret),
                )
                s.add(site)
                await s.flush()
                out.site_ids.append(site.id)
                out.codes[site.id] = join_code(code, secret)
                out.province_of[site.id] = prov.id
    return out


def fast_config(**overrides: Any) -> PresenceConfig:
    """Test knobs: ephemeral port, quick sweeps and batches."""
    base: dict[str, Any] = {
        "port": 0,
        "sweep_s": 0.05,
        "persist_interval_s": 0.1,
        "staff_batch_s": 0.05,
        "credential_poll_s": 0,
    }
    base.update(overrides)
    return PresenceConfig(**base)


async def eventually(
    check: Callable[[], bool | Awaitable[bool]], timeout: float = 5.0, what: str = ""
) -> None:
    """Poll `check` until it holds (no bare sleeps as synchronisation)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        await asyncio.sleep(0.01)


class Refused(Exception):
    """The server closed the socket instead of welcoming the hello."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code = code
        self.reason = reason


class RawSite:
    """A protocol-level site client for tests (every frame kept in `received`)."""

    def __init__(self, hub: PresenceHub) -> None:
        self.hub = hub
        self.ws: ClientConnection | None = None
        self.received: list[dict[str, Any]] = []
        self.welcome: dict[str, Any] = {}
        self._reader: asyncio.Task[None] | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        self._beat: asyncio.Task[None] | None = None

    async def connect(
        self,
        *,
        join_code: str | None = None,
        token: str | None = None,
        resume: dict[str, int] | None = None,
    ) -> dict[str, Any]:
        self.ws = await connect(self.hub.url, compression=None, ping_interval=None, max_size=None)
        hello: dict[str, Any] = {"type": "hello", "v": 1}
        if join_code:
            hello["join_code"] = join_code
        if token:
            hello["token"] = token
        if resume is not None:
            hello["resume"] = resume
        await self.ws.send(json.dumps(hello))
        try:
            first: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), 5))
        except ConnectionClosed as exc:
            rcvd = exc.rcvd
            raise Refused(rcvd.code if rcvd else 1006, rcvd.reason if rcvd else "") from exc
        self.welcome = first
        self._reader = asyncio.create_task(self._read())
        return first

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for raw in self.ws:
                self.received.append(json.loads(raw))
        except ConnectionClosed:
            pass
        finally:
            rcvd = self.ws.protocol.close_rcvd
            self.close_code = rcvd.code if rcvd else 1006
            self.close_reason = rcvd.reason if rcvd else ""

    def beat(self, interval: float = 0.2) -> None:
        """Send heartbeats every `interval` until `silence` or `close`."""

        async def loop() -> None:
            try:
                while True:
                    await self.send({"type": "hb"})
                    await asyncio.sleep(interval)
            except ConnectionClosed:
                return

        self._beat = asyncio.create_task(loop())

    def silence(self) -> None:
        """Stop heartbeats but keep the socket open (a link that died without a FIN)."""
        if self._beat is not None:
            self._beat.cancel()
            self._beat = None

    async def send(self, message: dict[str, Any] | str | bytes) -> None:
        assert self.ws is not None
        data = message if isinstance(message, str | bytes) else json.dumps(message)
        await self.ws.send(data)

    def msgs(self, stream: str | None = None) -> list[dict[str, Any]]:
        return [
            m
            for m in self.received
            if m.get("type") == "msg" and (stream is None or m["stream"] == stream)
        ]

    async def wait_closed(self, timeout: float = 5.0) -> int:
        assert self._reader is not None
        await asyncio.wait_for(self._reader, timeout)
        assert self.close_code is not None
        return self.close_code

    async def close(self) -> None:
        self.silence()
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await asyncio.wait_for(self._reader, 5)

    async def drop(self) -> None:
        """Cut the connection without a close frame (a cable pulled): ``connection_lost``."""
        self.silence()
        if self.ws is not None:
            self.ws.transport.abort()
        if self._reader is not None:
            await asyncio.wait_for(self._reader, 5)


async def add_site(db: Database, key: bytes, province_id: int, code: str) -> tuple[int, str]:
    """Provision one more commune site in `province_id`; its id and join code."""
    secret = new_site_secret()
    async with db.session() as s:
        unit = Unit(
            code=code,
            name=f"Xã {code}",
            search_key=fold(f"Xã {code}"),
            level="commune",
            parent_id=province_id,
            province_id=province_id,
            depth=2,
        )
        s.add(unit)
        await s.flush()
        site = Site(
            code=code,
            name=f"Xã {code}",
            search_key=fold(f"Xã {code}"),
            unit_id=unit.id,
            province_id=province_id,
            kind="commune",
            secret_digest=site_secret_digest(key, secret),
        )
        s.add(site)
        await s.flush()
        site_id = site.id
    return site_id, join_code(code, secret)
