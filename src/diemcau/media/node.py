"""Janus nodes: their description, local processes, and a health-checked registry.

A node is one Janus process with a role (``central`` or ``relay``), the
provinces it serves, a capacity and its addresses. In production nodes run on
their own hosts and are declared in config; for the embedded default and the
tests diemcau writes a private config folder and runs ``janus`` itself
(DESIGN.md §6: never the package's default config, service or ports).

Authentication decision: nodes run with ``token_auth = true`` and a
``token_auth_secret`` in ``janus.jcfg`` (HMAC-signed tokens; the CLI flag fails
to parse in 1.1.2). The control plane signs its own tokens and the short-lived
per-site tokens it hands to browsers, so granting access costs no round trip
to the node and survives a node restart. VideoRoom rooms are created with
``signed_tokens: true``, so a browser token must also name the room
(``room=<id>``). Stored tokens (admin ``add_token``) remain available with
``auth_mode="stored"`` for deployments that prefer revocable tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from diemcau.media.janus import JanusAdmin, JanusConnection, JanusError, sign_janus_token
from diemcau.tasks import cancel_and_wait

_PR_SET_PDEATHSIG = 1

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
LIB_DIR = Path("/usr/lib/x86_64-linux-gnu/janus")
USED_PLUGINS = ("libjanus_videoroom.so", "libjanus_streaming.so", "libjanus_audiobridge.so")
USED_TRANSPORTS = ("libjanus_websockets.so",)
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
        return await JanusConnection.connect(self.ws_url, token=self.control_token)

    async def connect_admin(self) -> JanusAdmin:
        return await JanusAdmin.connect(self.admin_ws_url, self.admin_secret)


def _jcfg_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _disabled(folder: Path, keep: tuple[str, ...]) -> str:
    """The comma list of every library in ``folder`` except ``keep``."""
    names = (
        sorted(p.name for p in folder.glob("libjanus_*.so") if p.name not in keep)
        if folder.is_dir()
        else []
    )
    return ",".join(names)


def _die_with_parent() -> None:
    """Runs in the child before exec: Janus gets SIGTERM when its parent dies.

    A control process (or a test run) that is killed must not leave Janus nodes
    running with nobody to stop them (Linux ``prctl(PR_SET_PDEATHSIG)``).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class LocalJanusProcess:
    """A Janus process on this host with a private, generated config folder.

    Args:
        node: the node it runs (its URLs must point at ``ws_port``/``admin_port``).
        workdir: where the config folder and log go (removed by `cleanup`).
        rtp_port_range: the core's RTP/RTCP port range, distinct per node.
        ice_enforce_list: the only interfaces ICE may gather on (``jlo0`` in the
            isolated namespace; ``None`` lets Janus gather every interface).
        nat_1_1: public address put in host candidates, if any.
        auth_mode: ``signed`` (token_auth_secret) or ``stored`` (admin add_token).
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
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

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
    ) -> LocalJanusProcess:
        """A new local node with random secrets and free ports (``index`` picks RTP range)."""
        ws_port, admin_port = free_tcp_port(), free_tcp_port()
        while admin_port == ws_port:
            admin_port = free_tcp_port()
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
        )

    @property
    def config_dir(self) -> Path:
        return self.workdir / "conf"

    @property
    def log_file(self) -> Path:
        return self.workdir / "janus.log"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def write_config(self) -> None:
        """Write janus.jcfg, the WebSocket transport and the three plugin configs."""
        conf = self.config_dir
        conf.mkdir(parents=True, exist_ok=True)
        empty = self.workdir / "none"
        empty.mkdir(exist_ok=True)
        n = self.node
        general = [
            f"configs_folder = {_jcfg_str(str(conf))}",
            f"plugins_folder = {_jcfg_str(str(LIB_DIR / 'plugins'))}",
            f"transports_folder = {_jcfg_str(str(LIB_DIR / 'transports'))}",
            f"events_folder = {_jcfg_str(str(empty))}",
            f"loggers_folder = {_jcfg_str(str(empty))}",
            f"debug_level = {self.debug_level}",
            f"admin_secret = {_jcfg_str(n.admin_secret)}",
            "session_timeout = 60",
            f"server_name = {_jcfg_str(n.name)}",
            "token_auth = true",
        ]
        if self.auth_mode == "signed":
            general.append(f"token_auth_secret = {_jcfg_str(n.token_secret)}")
        nat = ['ice_ignore_list = "vmnet"']
        if self.ice_enforce_list:
            nat.append(f"ice_enforce_list = {_jcfg_str(self.ice_enforce_list)}")
        if self.nat_1_1:
            nat.append(f"nat_1_1_mapping = {_jcfg_str(self.nat_1_1)}")
        lo, hi = self.rtp_port_range
        janus_cfg = (
            "general: {\n\t" + "\n\t".join(general) + "\n}\n"
            "media: {\n\t" + f'rtp_port_range = "{lo}-{hi}"' + "\n}\n"
            "nat: {\n\t" + "\n\t".join(nat) + "\n}\n"
            "plugins: {\n\t"
            + f"disable = {_jcfg_str(_disabled(LIB_DIR / 'plugins', USED_PLUGINS))}"
            + "\n}\n"
            "transports: {\n\t"
            + f"disable = {_jcfg_str(_disabled(LIB_DIR / 'transports', USED_TRANSPORTS))}"
            + "\n}\n"
            "events: {\n\tbroadcast = false\n}\n"
        )
        (conf / "janus.jcfg").write_text(janus_cfg)
        (conf / "janus.transport.websockets.jcfg").write_text(
            "general: {\n"
            '\tjson = "compact"\n'
            "\tws = true\n"
            f"\tws_port = {self.ws_port}\n"
            '\tws_ip = "127.0.0.1"\n'
            "\twss = false\n"
            "}\n"
            "admin: {\n"
            "\tadmin_ws = true\n"
            f"\tadmin_ws_port = {self.admin_port}\n"
            '\tadmin_ws_ip = "127.0.0.1"\n'
            "\tadmin_wss = false\n"
            "}\n"
        )
        (conf / "janus.transport.http.jcfg").write_text(
            "general: {\n\thttp = false\n\thttps = false\n}\nadmin: {\n\tadmin_http = false\n}\n"
        )
        plugin_general = (
            f"general: {{\n\tadmin_key = {_jcfg_str(n.admin_key)}\n\tlock_rtp_forward = true\n}}\n"
        )
        for plugin in ("videoroom", "streaming", "audiobridge"):
            (conf / f"janus.plugin.{plugin}.jcfg").write_text(plugin_general)

    async def start(self, timeout: float = 10.0) -> None:
        """Write the config, start Janus, and wait until its API answers."""
        if self.proc is not None and self.proc.poll() is None:
            return
        if shutil.which(JANUS_BINARY) is None:
            raise FileNotFoundError("the janus binary is not installed")
        self.write_config()
        self.log_file.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [
                JANUS_BINARY,
                "-F",
                str(self.config_dir),
                "-C",
                str(self.config_dir / "janus.jcfg"),
                "-o",
                "-L",
                str(self.log_file),
                "-N",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
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
            except (OSError, JanusError, TimeoutError) as exc:
                last = exc
            await asyncio.sleep(0.05)
        raise TimeoutError(f"janus {self.node.name} not ready in {timeout}s: {last}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL the process (fault injection)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    async def stop(self, grace: float = 3.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; by PID only."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    def cleanup(self) -> None:
        """Remove the generated config folder and log."""
        shutil.rmtree(self.workdir, ignore_errors=True)

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process so far, from /proc/<pid>/stat."""
        if self.proc is None:
            return 0.0
        with open(f"/proc/{self.proc.pid}/stat") as f:
            stat = f.read()
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks = int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")


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
                admin = await JanusAdmin.connect(
                    state.node.admin_ws_url, state.node.admin_secret, timeout=self._timeout
                )
                self._admins[name] = admin
            state.status = await admin.get_status(timeout=self._timeout)
            state.sessions = len(
                (await admin.request("list_sessions", self._timeout)).get("sessions", [])
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
