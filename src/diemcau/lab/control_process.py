"""A control server in a process of its own, to be killed (``kill -9``) and started again.

`ControlProcess` runs ``diemcau serve`` exactly as an operator does, on a store
seeded beforehand (`diemcau.lab.server.seed_store`), optionally inside a lab host's
network namespace and as one server of a standby pair (``--lease``). It dies with
its starter (``PR_SET_PDEATHSIG``), is ended by PID only, and keeps its output in a
log file beside its data.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from diemcau.processes import ChildProcess, die_with_parent, log_tail
from diemcau.tls.certs import ServerFiles

__all__ = ["ControlProcess"]


@dataclass
class ControlProcess(ChildProcess):
    """One ``diemcau serve`` process.

    Args:
        data: its data folder (the log goes there too).
        database_url: its store (seeded).
        port: the HTTP port; site sessions on `presence_port` (same address unless
            `presence_host` is given).
        host: the HTTP bind address.
        tls: a certificate and key (HTTPS and ``wss://``); None: plain HTTP.
        lease: one of a standby pair (``--lease``).
        servers, presence_urls: the pair, in the order sites try them.
        netns: a lab host's namespace file to run in (None: this one).
        env: more environment (``DIEMCAU_INVENTORY`` ...).
    """

    data: Path
    database_url: str
    port: int
    presence_port: int
    host: str = "127.0.0.1"
    presence_host: str = ""
    tls: ServerFiles | None = None
    lease: bool = False
    servers: tuple[str, ...] = ()
    presence_urls: tuple[str, ...] = ()
    netns: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)
    starts: int = field(default=0, init=False)

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def presence_url(self) -> str:
        host = self.presence_host or self.host
        return f"{'wss' if self.tls else 'ws'}://{host}:{self.presence_port}/site"

    @property
    def log(self) -> Path:
        return self.data / "serve.log"

    def _argv(self) -> list[str]:
        argv = [
            sys.executable,
            "-c",
            "import sys; from diemcau.cli import main; sys.exit(main())",
            "serve",
            "--db", self.database_url,
            "--data", str(self.data),
            "--host", self.host,
            "--port", str(self.port),
            "--public-url", self.base_url,
        ]  # fmt: skip
        if self.tls is not None:
            argv += ["--tls-cert", str(self.tls.cert), "--tls-key", str(self.tls.key)]
        if self.lease:
            argv.append("--lease")
        if self.servers:
            argv += ["--servers", ",".join(self.servers)]
        if self.presence_urls:
            argv += ["--presence-urls", ",".join(self.presence_urls)]
        if self.netns is not None:
            argv = ["nsenter", f"--net={self.netns}", "--", *argv]
        return argv

    def spawn(self) -> None:
        """Start the process (not waiting for it to answer)."""
        if self.alive():
            raise RuntimeError(f"{self.base_url} is already running (pid {self.pid})")
        self.data.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.update(
            {
                "DIEMCAU_PRESENCE_PORT": str(self.presence_port),
                "DIEMCAU_PRESENCE_HOST": self.presence_host or self.host,
                "DIEMCAU_PRESENCE_URL": self.presence_url,
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.env)
        with self.log.open("ab") as out:
            out.write(f"--- start {self.starts + 1} at {time.time():.3f}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter
                self._argv(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                env=env,
                preexec_fn=functools.partial(die_with_parent, signal.SIGKILL),
            )
        self.starts += 1

    async def health(self, client: httpx.AsyncClient) -> dict[str, str] | None:
        """Its ``/healthz`` answer, or None while it does not answer."""
        try:
            r = await client.get(f"{self.base_url}/healthz", timeout=2.0)
        except httpx.TransportError:
            return None
        if r.status_code != 200:
            return None
        body: dict[str, str] = r.json()
        return body

    async def wait_role(self, role: str | None = "active", timeout: float = 60.0) -> float:
        """Wait until its health says `role` (None: any; active: and its site socket
        accepts); returns the seconds waited."""
        started = time.monotonic()
        async with httpx.AsyncClient() as client:
            while True:
                if not self.alive():
                    raise RuntimeError(f"{self.base_url} exited: {self.log_tail()}")
                health = await self.health(client)
                if health is not None and role in (None, health.get("role")):
                    if role != "active" or await self._socket_open():
                        return time.monotonic() - started
                if time.monotonic() - started > timeout:
                    raise TimeoutError(f"{self.base_url} not {role} in {timeout} s")
                await asyncio.sleep(0.05)

    async def _socket_open(self) -> bool:
        host = self.presence_host or self.host
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(host, self.presence_port), 1.0
            )
        except (OSError, TimeoutError):
            return False
        writer.close()
        return True

    async def start(self, timeout: float = 60.0) -> float:
        """Spawn and wait until it serves (with `lease`: until it answers, whatever its role)."""
        self.spawn()
        return await self.wait_role(None if self.lease else "active", timeout)

    async def stop(self, grace: float = 20.0) -> int | None:
        """An orderly stop (SIGTERM), SIGKILL after `grace`; returns the exit status."""
        return await self.halt(grace)

    def log_tail(self, lines: int = 15) -> str:
        return log_tail(self.log, lines)
