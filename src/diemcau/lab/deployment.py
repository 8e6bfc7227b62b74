"""diemcau deployed on the lab: certificates, an inventory file, Janus nodes and coturn.

`LabDeployment` does what an operator does for a province, inside the lab's
namespaces: makes a lab CA and a certificate per host, writes secrets to files
and an inventory that refers to them, renders each node's configuration from
that inventory (`diemcau.deploy.render`), loads each node's firewall table and
starts Janus on central, relay1 and relay2 and coturn on turn, each in its own
namespace. With ``postgres``
it also runs the control host's database, a private PostgreSQL cluster on
198.51.100.10 (`LabPostgres`). The control server itself is the caller's
business (in-process in tests and benchmarks, on the control host).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

from diemcau.deploy.inventory import Inventory
from diemcau.deploy.render import coturn_config, janus_config, node_firewall
from diemcau.lab.browser import CHROMIUM
from diemcau.lab.network import BACKBONE_HOSTS, Lab
from diemcau.lab.postgres import LabPostgres
from diemcau.media.coturn import LocalTurnServer
from diemcau.media.node import JanusNode, LocalJanusProcess
from diemcau.media.turn import TurnServer
from diemcau.tls.certs import LabCA, ServerFiles
from diemcau.tls.context import spki_sha256

__all__ = ["LabDeployment"]


def _inventory_text(
    lab: Lab,
    certs: dict[str, ServerFiles],
    secret_dir: Path,
    ca: Path,
    provinces: dict[str, tuple[str, ...]],
    ice_tcp: tuple[str, ...],
) -> str:
    def ref(name: str) -> str:
        return f'"file:{secret_dir / name}"'

    out = [
        f'[control]\naddress = "{lab.ip("control")}"\nstandby = "{lab.ip("standby")}"\n'
        f'ca = "{ca}"\n'
    ]
    for index, (name, role) in enumerate(
        (("central", "central"), ("relay1", "relay"), ("relay2", "relay"))
    ):
        lo = 61000 + index * 1000
        prov = ", ".join(f'"{p}"' for p in provinces.get(name, ()))
        behind_nat = f'bind_address = "{lab.bind_ip(name)}"\n' if name in lab.nat_hosts else ""
        out.append(
            "[[node]]\n"
            f'name = "{name}"\nrole = "{role}"\naddress = "{lab.ip(name)}"\n{behind_nat}'
            f"ice_tcp = {'true' if name in ice_tcp else 'false'}\n"
            f"provinces = [{prov}]\ncapacity = 100\nrtp_ports = [{lo}, {lo + 999}]\n"
            f'cert = "{certs[name].cert}"\nkey = "{certs[name].key}"\n'
            f"admin_secret = {ref(name + '-admin-secret')}\n"
            f"admin_key = {ref(name + '-admin-key')}\n"
            f"token_secret = {ref(name + '-token-secret')}\n"
        )
    out.append(
        "[[turn]]\n"
        f'name = "turn"\naddress = "{lab.ip("turn")}"\n'
        f"secret = {ref('turn-secret')}\n"
        f'cert = "{certs["turn"].cert}"\nkey = "{certs["turn"].key}"\n'
    )
    return "\n".join(out)


@dataclass
class LabDeployment:
    """Certificates, inventory, Janus nodes and coturn on a built `Lab`.

    Args:
        lab: the lab (built).
        folder: where certificates, secrets, the inventory and logs go.
        provinces: province codes each relay serves (``relay1``/``relay2``).
        ca: an existing CA to sign with (default: a new one in ``folder/ca``).
        ice_tcp: nodes that offer ICE-TCP candidates (Janus then runs ICE Lite).
        postgres: run PostgreSQL on the control host (`database_url`).

    A node the lab put behind a 1:1 NAT (`Lab.nat_hosts`) gets its private
    address as ``bind_address``: the rendered config maps it to the public one
    (``nat_1_1_mapping``), as for a relay in a provider's data centre.
    """

    lab: Lab
    folder: Path
    provinces: dict[str, tuple[str, ...]] = field(default_factory=dict)
    ice_tcp: tuple[str, ...] = ()
    postgres: bool = False
    inventory: Inventory | None = None
    ca: LabCA | None = None
    certs: dict[str, ServerFiles] = field(default_factory=dict)
    janus: dict[str, LocalJanusProcess] = field(default_factory=dict)
    turn: LocalTurnServer | None = None
    database: LabPostgres | None = None

    @property
    def inventory_file(self) -> Path:
        return self.folder / "inventory.toml"

    def prepare(self) -> Inventory:
        """The CA, one certificate per host, secrets, and the inventory file."""
        self.ca = self.ca or LabCA.open_or_create(self.folder / "ca")
        for host, ips in BACKBONE_HOSTS.items():
            self.certs[host] = self.ca.issue(ips, self.folder / "certs", stem=host)
        secret_dir = self.folder / "secrets"
        secret_dir.mkdir(parents=True, exist_ok=True)
        for name in ("central", "relay1", "relay2"):
            for kind in ("admin-secret", "admin-key", "token-secret"):
                (secret_dir / f"{name}-{kind}").write_text(secrets.token_urlsafe(24) + "\n")
        (secret_dir / "turn-secret").write_text(secrets.token_urlsafe(24) + "\n")
        self.inventory_file.write_text(
            _inventory_text(
                self.lab, self.certs, secret_dir, self.ca.cert_path, self.provinces, self.ice_tcp
            )
        )
        self.inventory = Inventory.load(self.inventory_file)
        return self.inventory

    @property
    def database_url(self) -> str:
        """The control host's PostgreSQL database (started with ``postgres=True``)."""
        if self.database is None:
            raise RuntimeError("this lab deployment runs no PostgreSQL (postgres=False)")
        return self.database.url

    async def start_database(self) -> str:
        """Start only the control host's PostgreSQL (a control-plane lab); its URL."""
        if self.database is None:
            control = self.lab.hosts["control"]
            self.database = LabPostgres(control, self.lab.ip("control"))
            try:
                await self.database.start()
            except BaseException:
                self.database = None
                raise
        return self.database.url

    async def start(self) -> None:
        """Start Janus on central and the relays, coturn on turn, PostgreSQL on control."""
        inv = self.inventory or self.prepare()
        nodes = {n.name: n for n in inv.janus_nodes()}
        try:
            if self.postgres:
                await self.start_database()
            for spec in inv.node:
                # As on the node's host: the rendered firewall before Janus.
                self.lab.hosts[spec.name].nft(node_firewall(inv, spec))
                work = self.folder / "run" / spec.name
                proc = LocalJanusProcess(
                    node=nodes[spec.name],
                    workdir=work,
                    ws_port=spec.wss_port,
                    admin_port=spec.admin_port,
                    rtp_port_range=spec.rtp_ports,
                    layout=janus_config(inv, spec, work / "conf", work / "none"),
                    netns=self.lab.hosts[spec.name].netns,
                )
                self.janus[spec.name] = proc
                await proc.start()
            spec_turn = inv.turn[0]
            self.turn = LocalTurnServer(
                coturn_config(inv, spec_turn, self.folder / "run" / "turn"),
                netns=self.lab.hosts["turn"].netns,
            )
            await self.turn.start()
        except BaseException:
            await self.stop()
            raise

    def nodes(self) -> list[JanusNode]:
        return [p.node for p in self.janus.values()]

    def turn_servers(self) -> list[TurnServer]:
        assert self.inventory is not None
        return self.inventory.turn_servers()

    def spki_pins(self) -> list[str]:
        """Every lab server certificate's key pin, for Chromium's SPKI list."""
        return [spki_sha256(files.cert) for files in self.certs.values()]

    def chromium_in(self, lan: str) -> Path:
        """An executable that runs Debian's Chromium on the commune PC of ``lan``."""
        path = self.folder / f"chromium-{lan}"
        path.write_text(
            f'#!/bin/sh\nexec nsenter --net={self.lab.pc(lan).netns} -- {CHROMIUM} "$@"\n'
        )
        path.chmod(0o755)
        return path

    async def stop(self) -> None:
        """Stop coturn, every Janus process and PostgreSQL (by PID)."""
        if self.turn is not None:
            await self.turn.stop()
        for proc in self.janus.values():
            await proc.stop()
        if self.database is not None:
            await self.database.stop()
