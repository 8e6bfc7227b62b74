"""Each host's configuration, rendered from the inventory.

For a Janus node: the Janus config folder (`render_janus_config`: ``wss`` on
``wss_port`` for browsers and the control plane, ``admin_wss`` on
``admin_port`` open to the control server's address only, no plain listener),
a systemd unit, and an nftables table (`node_firewall`) that lets only the
media nodes reach the ports where the cascade's plain RTP arrives. For a TURN
server: ``turnserver.conf`` (relaying only to the media nodes) and a unit.
The lab starts the same configurations as local processes inside its
namespaces, so what is tested is what is deployed.
"""

from __future__ import annotations

from pathlib import Path

from diemcau.deploy.inventory import Inventory, NodeSpec, TurnSpec, resolve_secret
from diemcau.media.coturn import CoturnConfig, render_coturn_config
from diemcau.media.janus_config import (
    REMOTE_PUBLISHER_PORTS,
    JanusConfig,
    Listener,
    render_janus_config,
)

__all__ = ["coturn_config", "janus_config", "node_firewall", "render_all"]

ETC = Path("/etc/diemcau")


def janus_config(inv: Inventory, node: NodeSpec, folder: Path, events: Path) -> JanusConfig:
    """The Janus configuration of ``node`` with its config files in ``folder``."""
    where = f"node {node.name}"
    bind = node.bind_address or node.address
    return JanusConfig(
        name=node.name,
        folder=folder,
        admin_secret=resolve_secret(node.admin_secret, f"{where} admin_secret"),
        admin_key=resolve_secret(node.admin_key, f"{where} admin_key"),
        token_secret=resolve_secret(node.token_secret, f"{where} token_secret"),
        rtp_port_range=node.rtp_ports,
        events_folder=events,
        wss=Listener(bind, node.wss_port),
        admin_wss=Listener(bind, node.admin_port),
        cert=Path(node.cert),
        key=Path(node.key),
        admin_acl=",".join(inv.control.addresses),
        nat_1_1=node.nat_1_1,
        ice_tcp=node.ice_tcp,
    )


def node_firewall(inv: Inventory, node: NodeSpec) -> str:
    """nftables for a Janus node: cascade RTP ports from the media nodes only.

    Janus 1.1.2 cannot protect the cascade with SRTP (docs/deploy.md §7), so its
    plain RTP may come only from the nodes' own addresses: UDP to
    `REMOTE_PUBLISHER_PORTS` from anyone else (a browser, a TURN relay, the
    Internet) is dropped. The node's ``rtp_ports`` (browsers' ICE, DTLS-SRTP)
    lie outside that range and stay open.
    """
    lo, hi = REMOTE_PUBLISHER_PORTS
    own = [n.address for n in inv.node] + [n.bind_address for n in inv.node if n.nat_1_1]
    table = "diemcau_janus_" + node.name.replace("-", "_")
    return (
        f"# diemcau media node {node.name}: the cascade's plain RTP from media nodes only\n"
        f"table inet {table} {{\n"
        "\tset media_nodes {\n"
        "\t\ttype ipv4_addr\n"
        f"\t\telements = {{ {', '.join(dict.fromkeys(own))} }}\n"
        "\t}\n"
        "\tchain input {\n"
        "\t\ttype filter hook input priority filter; policy accept;\n"
        f"\t\tudp dport {lo}-{hi} ip saddr != @media_nodes drop\n"
        "\t}\n"
        "}\n"
    )


def coturn_config(inv: Inventory, turn: TurnSpec, folder: Path) -> CoturnConfig:
    server = turn.server()
    return CoturnConfig(
        server=server,
        listen_ips=(turn.address,),
        peers=tuple(n.address for n in inv.node),
        cert=Path(turn.cert) if turn.cert else None,
        key=Path(turn.key) if turn.key else None,
        folder=folder,
        relay_ports=turn.relay_ports,
    )


def _unit(description: str, exec_start: str) -> str:
    return (
        "[Unit]\n"
        f"Description={description}\n"
        "After=network-online.target\nWants=network-online.target\n\n"
        "[Service]\n"
        f"ExecStart={exec_start}\n"
        "Restart=always\nRestartSec=1\nLimitNOFILE=65536\n"
        "NoNewPrivileges=yes\nProtectSystem=strict\nProtectHome=yes\nPrivateTmp=yes\n"
        "AmbientCapabilities=CAP_NET_BIND_SERVICE\n\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )


def render_all(inv: Inventory, out: Path) -> list[Path]:
    """Write every host's files under ``out/<host>/`` (paths as on the host); returns them.

    On the host, ``/etc/diemcau/janus-<name>/`` holds the Janus folder,
    ``/etc/systemd/system/diemcau-janus-<name>.service`` its unit and
    ``/etc/nftables.d/diemcau-janus-<name>.nft`` its firewall table.
    """
    written: list[Path] = []

    def put(host: str, path: Path, text: str) -> None:
        target = out / host / path.relative_to("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        written.append(target)

    for node in inv.node:
        folder = ETC / f"janus-{node.name}"
        cfg = janus_config(inv, node, folder, folder / "none")
        for name, text in render_janus_config(cfg).items():
            put(node.name, folder / name, text)
        put(
            node.name,
            Path(f"/etc/nftables.d/diemcau-janus-{node.name}.nft"),
            node_firewall(inv, node),
        )
        put(
            node.name,
            Path(f"/etc/systemd/system/diemcau-janus-{node.name}.service"),
            _unit(
                f"diemcau Janus node {node.name} ({node.role})",
                f"/usr/bin/janus -F {folder} -C {folder}/janus.jcfg -N",
            ),
        )
    for turn in inv.turn:
        folder = Path("/var/lib/diemcau") / f"turn-{turn.name}"
        conf = ETC / f"turn-{turn.name}.conf"
        put(turn.name, conf, render_coturn_config(coturn_config(inv, turn, folder)))
        put(
            turn.name,
            Path(f"/etc/systemd/system/diemcau-turn-{turn.name}.service"),
            _unit(f"diemcau TURN server {turn.name}", f"/usr/bin/turnserver -c {conf}"),
        )
    return written
