"""The text of a Janus node's configuration files, for a local process or a remote host.

One function renders every file diemcau needs on a node (``janus.jcfg``, the
WebSocket and HTTP transports, the three plugins), so the local processes of the
demo and tests (`LocalJanusProcess`) and the configurations rendered from a
deployment inventory (`diemcau.deploy.render`) can never drift apart.

TLS decision: Janus's own WebSocket transport serves ``wss://`` (libwebsockets
with the ``certificates`` section of its config); no TLS front is needed. In a
field deployment the browser API listens as ``wss`` on 443 of the node's public
address, the Admin API as ``admin_wss`` on its own port restricted by
``admin_ws_acl`` to the control server, and the plain ``ws`` listener is off
(or on loopback for a local process).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "NODE_TUNING",
    "REMOTE_PUBLISHER_PORTS",
    "JanusConfig",
    "JanusTuning",
    "Listener",
    "render_janus_config",
]

LIB_DIR = Path("/usr/lib/x86_64-linux-gnu/janus")
USED_PLUGINS = ("libjanus_videoroom.so", "libjanus_streaming.so", "libjanus_audiobridge.so")
USED_TRANSPORTS = ("libjanus_websockets.so",)
# Janus 1.1.2's VideoRoom binds remote publishers (and their RTCP) and its
# forwarders' RTCP sockets in this fixed range, whatever the core's
# rtp_port_range says (DEFAULT_RTP_RANGE_MIN/MAX in janus_videoroom.c).
REMOTE_PUBLISHER_PORTS = (10000, 60000)


@dataclass(frozen=True)
class Listener:
    """An address and port a transport binds to."""

    ip: str
    port: int


@dataclass(frozen=True)
class JanusTuning:
    """The media-path settings of ``janus.jcfg`` that change a node's CPU per viewer.

    ``None`` leaves Janus's own default. docs/performance.md ("Media plane")
    has the measurements behind the defaults chosen for diemcau's nodes.

    Attributes:
        event_loops: handles share this many event-loop threads (0: one thread
            per handle, Janus's default).
        nack_optimizations: empty a viewer's retransmission buffer when it is
            sent a keyframe.
        min_nack_queue: the shortest retransmission buffer, in ms.
        no_media_timer: seconds without media before a "media" event (0: never).
        slowlink_threshold: lost packets per second that raise a "slowlink" event.
        twcc_period: how often transport-wide CC feedback goes to publishers, ms.
    """

    event_loops: int | None = None
    nack_optimizations: bool | None = None
    min_nack_queue: int | None = None
    no_media_timer: int | None = None
    slowlink_threshold: int | None = None
    twcc_period: int | None = None

    def general(self) -> list[str]:
        return [] if self.event_loops is None else [f"event_loops = {self.event_loops}"]

    def media(self) -> list[str]:
        out: list[str] = []
        for key in ("min_nack_queue", "no_media_timer", "slowlink_threshold", "twcc_period"):
            value = getattr(self, key)
            if value is not None:
                out.append(f"{key} = {int(value)}")
        if self.nack_optimizations is not None:
            out.append(f"nack_optimizations = {'true' if self.nack_optimizations else 'false'}")
        return out


# diemcau's nodes: handles share two event loops instead of a thread each. On
# 200 program viewers of one relay this halved Janus's CPU per viewer (0.30 ->
# 0.13 % of a core), and with 200 two-way sites it kept Janus under a core
# where a thread per handle took all of it and starved everything else
# (docs/performance.md, "Media plane"). The other knobs measured no difference.
NODE_TUNING = JanusTuning(event_loops=2)


@dataclass(frozen=True)
class JanusConfig:
    """Everything that differs between nodes.

    Attributes:
        folder: where the config files live on the node (``configs_folder``).
        token_secret: the ``token_auth_secret`` (None: stored tokens only).
        ws, wss: the Janus API listeners (plain, TLS); either may be None.
        admin_ws, admin_wss: the Admin API listeners.
        cert, key: PEM files for the TLS listeners.
        acl, admin_acl: address prefixes allowed to connect (empty: everyone).
        ice_enforce_list: the only interfaces ICE gathers on.
        nat_1_1: the public address put in candidates (node behind a 1:1 NAT).
        ice_tcp: offer ICE-TCP candidates (Janus requires ICE Lite for it).
        events_folder: an empty folder (no event handlers, no loggers).
    """

    name: str
    folder: Path
    admin_secret: str
    admin_key: str
    token_secret: str | None
    rtp_port_range: tuple[int, int]
    events_folder: Path
    ws: Listener | None = None
    wss: Listener | None = None
    admin_ws: Listener | None = None
    admin_wss: Listener | None = None
    cert: Path | None = None
    key: Path | None = None
    acl: str = ""
    admin_acl: str = ""
    ice_enforce_list: str | None = None
    nat_1_1: str | None = None
    ice_tcp: bool = False
    debug_level: int = 3
    lib_dir: Path = LIB_DIR
    tuning: JanusTuning = NODE_TUNING


def _s(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _disabled(folder: Path, keep: tuple[str, ...]) -> str:
    """The comma list of every library in ``folder`` except ``keep``."""
    names = (
        sorted(p.name for p in folder.glob("libjanus_*.so") if p.name not in keep)
        if folder.is_dir()
        else []
    )
    return ",".join(names)


def _section(name: str, lines: list[str]) -> str:
    return name + ": {\n\t" + "\n\t".join(lines) + "\n}\n"


def _listeners(prefix: str, plain: Listener | None, tls: Listener | None) -> list[str]:
    out = [f"{prefix}ws = {'true' if plain else 'false'}"]
    if plain:
        out += [f"{prefix}ws_port = {plain.port}", f"{prefix}ws_ip = {_s(plain.ip)}"]
    out.append(f"{prefix}wss = {'true' if tls else 'false'}")
    if tls:
        out += [f"{prefix}wss_port = {tls.port}", f"{prefix}wss_ip = {_s(tls.ip)}"]
    return out


def render_janus_config(cfg: JanusConfig) -> dict[str, str]:
    """File name -> content of every config file of the node."""
    if (cfg.wss or cfg.admin_wss) and not (cfg.cert and cfg.key):
        raise ValueError(f"janus {cfg.name}: wss listeners need a certificate and a key")
    general = [
        f"configs_folder = {_s(str(cfg.folder))}",
        f"plugins_folder = {_s(str(cfg.lib_dir / 'plugins'))}",
        f"transports_folder = {_s(str(cfg.lib_dir / 'transports'))}",
        f"events_folder = {_s(str(cfg.events_folder))}",
        f"loggers_folder = {_s(str(cfg.events_folder))}",
        f"debug_level = {cfg.debug_level}",
        f"admin_secret = {_s(cfg.admin_secret)}",
        "session_timeout = 60",
        f"server_name = {_s(cfg.name)}",
        "token_auth = true",
        *cfg.tuning.general(),
    ]
    if cfg.token_secret is not None:
        general.append(f"token_auth_secret = {_s(cfg.token_secret)}")
    nat = ['ice_ignore_list = "vmnet"']
    if cfg.ice_enforce_list:
        nat.append(f"ice_enforce_list = {_s(cfg.ice_enforce_list)}")
    if cfg.nat_1_1:
        nat.append(f"nat_1_1_mapping = {_s(cfg.nat_1_1)}")
    if cfg.ice_tcp:
        nat += ["ice_lite = true", "ice_tcp = true"]
    lo, hi = cfg.rtp_port_range
    janus = (
        _section("general", general)
        + _section("media", [f'rtp_port_range = "{lo}-{hi}"', *cfg.tuning.media()])
        + _section("nat", nat)
        + _section("plugins", [f"disable = {_s(_disabled(cfg.lib_dir / 'plugins', USED_PLUGINS))}"])
        + _section(
            "transports",
            [f"disable = {_s(_disabled(cfg.lib_dir / 'transports', USED_TRANSPORTS))}"],
        )
        + _section("events", ["broadcast = false"])
    )
    ws_general = ['json = "compact"', *_listeners("", cfg.ws, cfg.wss)]
    if cfg.acl:
        ws_general.append(f"ws_acl = {_s(cfg.acl)}")
    ws_admin = _listeners("admin_", cfg.admin_ws, cfg.admin_wss)
    if cfg.admin_acl:
        ws_admin.append(f"admin_ws_acl = {_s(cfg.admin_acl)}")
    websockets = _section("general", ws_general) + _section("admin", ws_admin)
    if cfg.cert and cfg.key:
        websockets += _section(
            "certificates", [f"cert_pem = {_s(str(cfg.cert))}", f"cert_key = {_s(str(cfg.key))}"]
        )
    plugin = _section("general", [f"admin_key = {_s(cfg.admin_key)}", "lock_rtp_forward = true"])
    files = {
        "janus.jcfg": janus,
        "janus.transport.websockets.jcfg": websockets,
        "janus.transport.http.jcfg": _section("general", ["http = false", "https = false"])
        + _section("admin", ["admin_http = false"]),
    }
    for name in ("videoroom", "streaming", "audiobridge"):
        files[f"janus.plugin.{name}.jcfg"] = plugin
    return files
