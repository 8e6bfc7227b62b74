"""Janus nodes: their description, local processes, and a health-checked registry.

A node is one Janus process with a role (``central`` or ``relay``), the
provinces it serves, a capacity and its addresses. In production nodes run on
their own hosts and are declared in config; for the embedded default and the
tests diemcau writes a private config folder and runs ``janus`` itself
(docs/media.md: never the package's default config, service or ports).

Authentication decision: nodes run with ``token_auth = true`` and a
``token_auth_secret`` in ``janus.jcfg`` (HMAC-signed tokens; the CLI flag fails
to parse in 1.1.2). The control plane signs its own tokens and the short-lived
per-site tokens it hands to browsers, so granting access costs no round trip
to the node and survives a node restart. VideoRoom rooms are created with
``signed_tokens: true``, so a browser token must also name the room
(``room=<id>``). Stored tokens (admin ``add_token``) remain available with
``auth_mode="stored"`` (tested), but VideoRoom checks room tokens only in signed
mode, which the media rights need (docs/media.md, "Who may publish and watch").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from websockets.exceptions import WebSocketException

from diemcau.media.janus import JanusAdmin, JanusConnection, JanusError, sign_janus_token, values
from diemcau.media.janus_config import (
    NODE_TUNING,
    JanusConfig,
    JanusTuning,
    Listener,
    render_janus_config,
)
from diemcau.processes import ChildProcess, log_tail
from diemcau.tasks import cancel_and_wait
from diemcau.tls.certs import ServerFiles
from diemcau.tls.context import client_context

__all__ = [
    "CONTROL_PLUGINS",
    "JanusNode",
    "LocalJanusProcess",
    "NodeRegistry",
    "NodeState",
    "free_tcp_port",
]

log = logging.getLogger(__name__)

Role = Literal["central", "relay"]
JANUS_BINARY = "janus"
CONTROL_PLUGINS = ["janus.plugin.videoroom", "janus.plugin.streaming", "janus.plugin.audiobridge"]


def free_tcp_port(host: str = "127.0.0.1") -> int:
    """A TCP port free right now on ``host`` (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class JanusNode:
    """How the control plane reaches and uses one Janus node.

    Attributes:
        name: unique node name (``central``, ``relay-79``...).
        role: ``central`` holds the chair; ``relay`` fans the program out to sites.
        provinces: province unit codes this relay serves (empty for central).
        capacity: how many sites the planner may put on it.
        ws_url: Janus API WebSocket as the control plane reaches it.
        admin_ws_url: Admin API WebSocket.
        admin_secret: the node's ``admin_secret``.
        admin_key: the plugins' ``admin_key`` (create rooms, forwarders).
        token_secret: the node's ``token_auth_secret`` (signs tokens).
        public_ws_url: the Janus API URL given to browsers (defaults to ``ws_url``).
        rtp_host: the address other nodes send RTP to (remote publishers).
        rtp_iface: the node's own address its remote-publisher sockets bind to,
            when it differs from ``rtp_host`` (a host behind a 1:1 NAT: Janus
            cannot bind the public address, which only the NAT holds).
        ca_file: CA certificate that verifies the node's ``wss://`` listeners
            (empty: the system's trust store).
    """

    name: str
    role: Role
    ws_url: str
    admin_ws_url: str
    admin_secret: str
    admin_key: str
    token_secret: str
    provinces: tuple[str, ...] = ()
    capacity: int = 500
    public_ws_url: str = ""
    rtp_host: str = "127.0.0.1"
    rtp_iface: str = ""
    ca_file: str = ""

    def ssl_context(self) -> ssl.SSLContext:
        """The client context that verifies this node's TLS listeners."""
        return client_context(Path(self.ca_file) if self.ca_file else None)

    @property
    def browser_ws_url(self) -> str:
        return self.public_ws_url or self.ws_url

    def control_token(self, ttl: int = 300) -> str:
        """A signed token for the control plane itself (every plugin it drives)."""
        return sign_janus_token(self.token_secret, CONTROL_PLUGINS, int(time.time()) + ttl)

    def browser_token(self, ttl: int = 600) -> str:
        """A short-lived core token for one browser: sessions and VideoRoom only."""
        return sign_janus_token(
            self.token_secret, ["janus.plugin.videoroom"], int(time.time()) + ttl
        )

    def room_token(self, room_ids: Iterable[int], ttl: int = 600) -> str:
        """A short-lived VideoRoom token naming the only rooms a browser may join."""
        return sign_janus_token(
            self.token_secret,
            [f"room={r}" for r in room_ids],
            int(time.time()) + ttl,
            realm="janus.plugin.videoroom",
        )

    async def connect(self) -> JanusConnection:
        """A control-plane API connection to this node."""
        return await JanusConnection.connect(
            self.ws_url, token=self.control_token, ssl_context=self._tls_for(self.ws_url)
        )

    async def connect_admin(self, timeout: float = 5.0) -> JanusAdmin:
        return await JanusAdmin.connect(
            self.admin_ws_url,
            self.admin_secret,
            timeout=timeout,
            ssl_context=self._tls_for(self.admin_ws_url),
        )

    def _tls_for(self, url: str) -> ssl.SSLContext | None:
        return self.ssl_context() if url.startswith("wss:") else None


@dataclass
class LocalJanusProcess(ChildProcess):
    """A Janus process on this host with a private, generated config folder.

    Args:
        node: the node it runs (its URLs must point at ``ws_port``/``admin_port``).
        workdir: where the config folder and log go (removed by `cleanup`).
        rtp_port_range: the core's RTP/RTCP port range, distinct per node.
        ice_enforce_list: the only interfaces ICE may gather on (``jlo0`` in the
            isolated namespace; ``None`` lets Janus gather every interface).
        nat_1_1: public address put in host candidates, if any.
        auth_mode: ``signed`` (token_auth_secret) or ``stored`` (admin add_token).
        tls: certificate and key; browsers then get ``wss://bind_ip:wss_port``.
        layout: a complete configuration to use instead of the local default
            (the multi-host lab renders its own: wss on 443, admin_wss).
        netns: a network namespace file to run Janus in (``/proc/<pid>/ns/net``).
        tuning: media-path settings (`JanusTuning`) for the local default config.
    """

    node: JanusNode
    workdir: Path
    ws_port: int
    admin_port: int
    rtp_port_range: tuple[int, int]
    ice_enforce_list: str | None = None
    nat_1_1: str | None = None
    auth_mode: Literal["signed", "stored"] = "signed"
    debug_level: int = 3
    tls: ServerFiles | None = None
    bind_ip: str = "127.0.0.1"
    wss_port: int = 0
    layout: JanusConfig | None = None
    netns: str | None = None
    tuning: JanusTuning = NODE_TUNING
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)
    # Started and not stopped on purpose: a supervisor restarts it if it dies.
    wanted: bool = field(default=False, init=False)

    @classmethod
    def create(
        cls,
        name: str,
        role: Role,
        base_dir: Path,
        *,
        index: int = 0,
        provinces: tuple[str, ...] = (),
        capacity: int = 500,
        ice_enforce_list: str | None = None,
        auth_mode: Literal["signed", "stored"] = "signed",
        tls: ServerFiles | None = None,
    ) -> LocalJanusProcess:
        """A new local node with random secrets and free ports (``index`` picks RTP range).

        With ``tls`` browsers are given ``wss://127.0.0.1:<port>`` (the certificate
        must name 127.0.0.1); the control plane stays on loopback ``ws``.
        """
        ports: set[int] = set()
        while len(ports) < 3:
            ports.add(free_tcp_port())
        ws_port, admin_port, wss_port = sorted(ports)
        node = JanusNode(
            name=name,
            role=role,
            provinces=provinces,
            capacity=capacity,
            ws_url=f"ws://127.0.0.1:{ws_port}",
            admin_ws_url=f"ws://127.0.0.1:{admin_port}",
            admin_secret=secrets.token_urlsafe(24),
            admin_key=secrets.token_urlsafe(24),
            token_secret=secrets.token_urlsafe(24),
            public_ws_url=f"wss://127.0.0.1:{wss_port}" if tls else "",
        )
        lo = 20000 + (index % 40) * 1000
        return cls(
            node=node,
            workdir=base_dir / name,
            ws_port=ws_port,
            admin_port=admin_port,
            rtp_port_range=(lo, lo + 999),
            ice_enforce_list=ice_enforce_list,
            auth_mode=auth_mode,
            tls=tls,
            wss_port=wss_port if tls else 0,
        )

    @property
    def config_dir(self) -> Path:
        return self.workdir / "conf"

    @property
    def log_file(self) -> Path:
        return self.workdir / "janus.log"

    def janus_config(self) -> JanusConfig:
        """This process's configuration: `layout` when given, else the local default.

        The local default serves the control plane on loopback (``ws`` and
        ``admin_ws``) and, with `tls`, browsers on ``wss`` at ``bind_ip:wss_port``.
        """
        if self.layout is not None:
            return self.layout
        n = self.node
        return JanusConfig(
            name=n.name,
            folder=self.config_dir,
            admin_secret=n.admin_secret,
            admin_key=n.admin_key,
            token_secret=n.token_secret if self.auth_mode == "signed" else None,
            rtp_port_range=self.rtp_port_range,
            events_folder=self.workdir / "none",
            ws=Listener("127.0.0.1", self.ws_port),
            wss=Listener(self.bind_ip, self.wss_port) if self.tls else None,
            admin_ws=Listener("127.0.0.1", self.admin_port),
            cert=self.tls.cert if self.tls else None,
            key=self.tls.key if self.tls else None,
            ice_enforce_list=self.ice_enforce_list,
            nat_1_1=self.nat_1_1,
            debug_level=self.debug_level,
            tuning=self.tuning,
        )

    def write_config(self) -> None:
        """Write janus.jcfg, the transports and the three plugin configs."""
        cfg = self.janus_config()
        cfg.folder.mkdir(parents=True, exist_ok=True)
        cfg.events_folder.mkdir(parents=True, exist_ok=True)
        for name, text in render_janus_config(cfg).items():
            (cfg.folder / name).write_text(text)

    async def start(self, timeout: float = 10.0) -> None:
        """Write the config, start Janus, and wait until its API answers."""
        if self.proc is not None and self.proc.poll() is None:
            return
        if shutil.which(JANUS_BINARY) is None:
            raise FileNotFoundError("the janus binary is not installed")
        self.wanted = True
        self.write_config()
        self.log_file.unlink(missing_ok=True)
        folder = self.janus_config().folder
        argv = [JANUS_BINARY, "-F", str(folder), "-C", str(folder / "janus.jcfg")]
        self.spawn_quiet([*argv, "-o", "-L", str(self.log_file), "-N"], self.netns)
        await self.wait_ready(timeout)

    async def wait_ready(self, timeout: float = 10.0) -> None:
        """Poll the API until it answers (Janus is ready in ~0.1 s)."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"janus {self.node.name} exited with {self.proc.returncode}: " + self.log_tail()
                )
            try:
                # Stored-token nodes accept no API request before a token is added,
                # so readiness is read from the Admin API there.
                if self.auth_mode == "stored":
                    admin = await self.node.connect_admin()
                    try:
                        await admin.get_status()
                    finally:
                        await admin.close()
                else:
                    conn = await self.node.connect()
                    try:
                        await conn.info()
                    finally:
                        await conn.close()
                return
            except (OSError, JanusError, TimeoutError, WebSocketException) as exc:
                last = exc  # a listener just opened may answer before it speaks HTTP
            await asyncio.sleep(0.05)
        raise TimeoutError(f"janus {self.node.name} not ready in {timeout}s: {last}")

    def log_tail(self, lines: int = 20) -> str:
        return log_tail(self.log_file, lines)

    async def stop(self, grace: float = 3.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; by PID only."""
        self.wanted = False
        await self.halt(grace)

    def cleanup(self) -> None:
        """Remove the generated config folder and log."""
        shutil.rmtree(self.workdir, ignore_errors=True)


@dataclass
class NodeState:
    """The registry's view of one node."""

    node: JanusNode
    up: bool = False
    last_ok: float = 0.0
    last_error: str = ""
    sessions: int = 0
    status: dict[str, object] = field(default_factory=dict)


StateCallback = Callable[[JanusNode, bool], Awaitable[None] | None]


class NodeRegistry:
    """Every known node and whether it is up, from admin ``get_status`` every second.

    A node that stops answering is marked down after ``down_after`` seconds
    (default 3 s, inside the 5 s the issue allows); callbacks run on every
    up/down change.
    """

    def __init__(
        self, *, interval: float = 1.0, down_after: float = 3.0, request_timeout: float = 1.0
    ) -> None:
        self._states: dict[str, NodeState] = {}
        self._admins: dict[str, JanusAdmin] = {}
        self._callbacks: list[StateCallback] = []
        self._interval = interval
        self._down_after = down_after
        self._timeout = request_timeout
        self._task: asyncio.Task[None] | None = None

    def add(self, node: JanusNode) -> None:
        self._states[node.name] = NodeState(node)

    def replace(self, node: JanusNode) -> None:
        """Update a node's description (e.g. new secrets after a restart)."""
        state = self._states.setdefault(node.name, NodeState(node))
        state.node = node
        self._drop_admin(node.name)

    def remove(self, name: str) -> None:
        self._states.pop(name, None)
        self._drop_admin(name)

    def on_change(self, callback: StateCallback) -> None:
        self._callbacks.append(callback)

    def get(self, name: str) -> JanusNode:
        return self._states[name].node

    def state(self, name: str) -> NodeState:
        return self._states[name]

    def nodes(self, role: Role | None = None) -> list[JanusNode]:
        return [s.node for s in self._states.values() if role is None or s.node.role == role]

    def is_up(self, name: str) -> bool:
        s = self._states.get(name)
        return bool(s and s.up)

    def healthy(self, role: Role | None = None) -> list[JanusNode]:
        return [n for n in self.nodes(role) if self.is_up(n.name)]

    def _drop_admin(self, name: str) -> None:
        admin = self._admins.pop(name, None)
        if admin is not None:
            task = asyncio.ensure_future(admin.close())
            task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    async def check(self, name: str) -> bool:
        """One health check of one node; returns whether it answered."""
        state = self._states[name]
        try:
            admin = self._admins.get(name)
            if admin is None or admin.closed.is_set():
                admin = await state.node.connect_admin(timeout=self._timeout)
                self._admins[name] = admin
            state.status = await admin.get_status(timeout=self._timeout)
            state.sessions = len(
                values(await admin.request("list_sessions", self._timeout), "sessions")
            )
            state.last_ok = time.monotonic()
            state.last_error = ""
            ok = True
        except (OSError, JanusError, TimeoutError) as exc:
            self._drop_admin(name)
            state.last_error = str(exc) or type(exc).__name__
            ok = False
        now = time.monotonic()
        if ok and not state.up:
            await self._set(state, True)
        elif not ok and state.up and now - state.last_ok >= self._down_after:
            await self._set(state, False)
        return ok

    async def _set(self, state: NodeState, up: bool) -> None:
        state.up = up
        log.info("media node %s is %s", state.node.name, "up" if up else "down")
        for cb in list(self._callbacks):
            result = cb(state.node, up)
            if result is not None:
                await result

    async def check_all(self) -> None:
        await asyncio.gather(*(self.check(name) for name in list(self._states)))

    async def _loop(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.check_all()
            except Exception:
                log.exception("node health check failed")
            await asyncio.sleep(max(0.0, self._interval - (time.monotonic() - started)))

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(), name="media-node-health")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        for name in list(self._admins):
            admin = self._admins.pop(name)
            with contextlib.suppress(Exception):
                await admin.close()


def with_capacity(node: JanusNode, capacity: int) -> JanusNode:
    """A copy of ``node`` with another capacity (planner experiments)."""
    return replace(node, capacity=capacity)
