"""coturn for the lab and the demo: its configuration file and a supervised process.

In production coturn runs as its own service on its own host, configured from
the inventory (`diemcau.deploy.render` writes the same file); in the lab and the
demo diemcau starts ``turnserver`` itself, bound only to the addresses it is
given (a lab host's address, or loopback), and stops it by PID.

The configuration relays only towards the media nodes (``denied-peer-ip`` for
everything, ``allowed-peer-ip`` for each node): a TURN server that relays to any
address is an open proxy into the data centre.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from diemcau.media.turn import TurnServer
from diemcau.processes import ChildProcess, log_tail

__all__ = ["CoturnConfig", "LocalTurnServer", "render_coturn_config"]

TURN_BINARY = "turnserver"


@dataclass(frozen=True)
class CoturnConfig:
    """What a coturn config needs.

    Attributes:
        server: the TURN server as browsers reach it (host, ports, secret, realm).
        listen_ips: addresses coturn binds to (and relays from).
        peers: the only addresses it relays to (the media nodes).
        cert, key: PEM files for TURN over TLS.
        folder: where its log, pid and user database go.
        external_ip: the public address when the host sits behind a 1:1 NAT.
        relay_ports: the UDP port range for relayed allocations.
    """

    server: TurnServer
    listen_ips: tuple[str, ...]
    peers: tuple[str, ...]
    cert: Path | None
    key: Path | None
    folder: Path
    external_ip: str | None = None
    relay_ports: tuple[int, int] = (49160, 49999)


def render_coturn_config(cfg: CoturnConfig) -> str:
    """The text of ``turnserver.conf``."""
    s = cfg.server
    lines = [
        f"listening-port={s.port}",
        *(f"listening-ip={ip}" for ip in cfg.listen_ips),
        *(f"relay-ip={ip}" for ip in cfg.listen_ips),
        f"min-port={cfg.relay_ports[0]}",
        f"max-port={cfg.relay_ports[1]}",
        "fingerprint",
        "use-auth-secret",
        f"static-auth-secret={s.secret}",
        f"realm={s.realm}",
        f"server-name={s.name}",
        "no-cli",
        "no-multicast-peers",
        "no-tlsv1",
        "no-tlsv1_1",
        "no-software-attribute",
        "denied-peer-ip=0.0.0.0-255.255.255.255",
        "denied-peer-ip=::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        *(f"allowed-peer-ip={ip}" for ip in cfg.peers),
        f"userdb={cfg.folder / 'turndb'}",
        f"pidfile={cfg.folder / 'turnserver.pid'}",
        f"log-file={cfg.folder / 'turnserver.log'}",
        "simple-log",
        "no-stdout-log",
    ]
    if cfg.external_ip:
        lines.append(f"external-ip={cfg.external_ip}")
    if s.tls_port and cfg.cert and cfg.key:
        lines += [f"tls-listening-port={s.tls_port}", f"cert={cfg.cert}", f"pkey={cfg.key}"]
    else:
        lines += ["no-tls", "no-dtls"]
    return "\n".join(lines) + "\n"


@dataclass
class LocalTurnServer(ChildProcess):
    """``turnserver`` started by diemcau (lab, demo), optionally inside a network namespace."""

    config: CoturnConfig
    netns: str | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def log_tail(self, lines: int = 15) -> str:
        return log_tail(self.config.folder / "turnserver.log", lines)

    @property
    def conf_file(self) -> Path:
        return self.config.folder / "turnserver.conf"

    async def start(self, timeout: float = 10.0) -> None:
        """Write the config, start coturn and wait until it listens."""
        if shutil.which(TURN_BINARY) is None:
            raise FileNotFoundError("the turnserver binary is not installed (Debian coturn)")
        self.config.folder.mkdir(parents=True, exist_ok=True)
        self.conf_file.write_text(render_coturn_config(self.config))
        self.spawn_quiet([TURN_BINARY, "-c", str(self.conf_file)], self.netns)
        await self._wait_ready(timeout)

    async def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"turnserver exited with {self.proc.returncode}: {self.log_tail()}"
                )
            if self._listening():
                return
            await asyncio.sleep(0.1)
        raise TimeoutError(f"turnserver not ready in {timeout}s: {self.log_tail()}")

    def _listening(self) -> bool:
        """Whether coturn's listening sockets exist (read from its namespace's /proc)."""
        if self.proc is None:
            return False
        try:
            tcp = Path(f"/proc/{self.proc.pid}/net/tcp").read_text()
        except OSError:
            return False
        want = f":{self.config.server.port:04X} "
        return any(want in line and " 0A " in line for line in tcp.splitlines()[1:])

    async def stop(self, grace: float = 3.0) -> None:
        """SIGTERM, then SIGKILL after ``grace``; by PID only."""
        await self.halt(grace)
