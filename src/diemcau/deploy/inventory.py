"""The deployment inventory: one TOML file, the single source for the lab and production.

::

    [control]
    address = "198.51.100.10"          # where nodes see the control server come from
    standby = "198.51.100.12"          # optional: the standby control server of a pair
    ca = "/etc/diemcau/ca.pem"         # verifies the nodes' TLS (omit: system CAs)

    [[node]]
    name = "central"
    role = "central"
    address = "198.51.100.20"          # control plane and other nodes reach it here
    public_host = "central.media.example.gov.vn"   # browsers (its certificate names it)
    cert = "/etc/diemcau/tls/central.pem"
    key = "/etc/diemcau/tls/central-key.pem"
    admin_secret = "env:DC_CENTRAL_ADMIN"          # or "file:/path", never a literal
    admin_key = "file:/etc/diemcau/secrets/central-key"
    token_secret = "env:DC_CENTRAL_TOKEN"

    [[node]]
    name = "relay-79"
    role = "relay"
    provinces = ["79"]
    ...

    [[turn]]
    name = "turn-1"
    address = "198.51.100.40"
    public_host = "turn.example.gov.vn"
    secret = "env:DC_TURN_SECRET"
    cert = "..."; key = "..."

Secrets are references: ``env:NAME`` (an environment variable) or
``file:PATH`` (a file's first line). A literal secret is refused, so the file
can be kept in version control. Unknown keys are refused.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from diemcau.media.janus_config import REMOTE_PUBLISHER_PORTS
from diemcau.media.node import JanusNode
from diemcau.media.turn import TurnServer

__all__ = ["ControlSpec", "Inventory", "InventoryError", "NodeSpec", "TurnSpec", "resolve_secret"]


class InventoryError(ValueError):
    """The inventory cannot be used; the message names the entry and the field."""


def resolve_secret(ref: str, where: str) -> str:
    """The value behind ``env:NAME`` or ``file:PATH``."""
    if ref.startswith("env:"):
        value = os.environ.get(ref[4:], "")
        if not value:
            raise InventoryError(f"{where}: environment variable {ref[4:]} is not set")
        return value
    if ref.startswith("file:"):
        try:
            lines = Path(ref[5:]).read_text().splitlines()
        except OSError as exc:
            raise InventoryError(f"{where}: cannot read {ref[5:]} ({exc.strerror})") from None
        value = lines[0].strip() if lines else ""
        if not value:
            raise InventoryError(f"{where}: {ref[5:]} is empty")
        return value
    raise InventoryError(f"{where}: secrets must be env:NAME or file:PATH references")


def _check_ref(value: str) -> str:
    if not value.startswith(("env:", "file:")):
        raise ValueError("must be an env:NAME or file:PATH reference, not a literal secret")
    return value


def _check_ip(value: str) -> str:
    ipaddress.ip_address(value)
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ControlSpec(_Model):
    address: str
    # The standby control server of a pair (docs/reliability.md): nodes accept it too.
    standby: str = ""
    ca: str = ""

    _ip = field_validator("address")(_check_ip)

    @field_validator("standby")
    @classmethod
    def _standby_ip(cls, value: str) -> str:
        return _check_ip(value) if value else value

    @property
    def addresses(self) -> list[str]:
        """Where the control servers reach the nodes from (the active, and any standby)."""
        return [a for a in (self.address, self.standby) if a]


class NodeSpec(_Model):
    """One Janus node."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,40}$")
    role: Literal["central", "relay"]
    address: str
    public_host: str = ""
    bind_address: str = ""
    provinces: tuple[str, ...] = ()
    capacity: int = Field(default=500, gt=0)
    wss_port: int = Field(default=443, gt=0, lt=65536)
    admin_port: int = Field(default=7989, gt=0, lt=65536)
    # Outside 10000-60000, where the VideoRoom binds the cascade's remote publishers:
    # the node firewall opens these ports to browsers and those to media nodes only.
    rtp_ports: tuple[int, int] = (61000, 65000)
    ice_tcp: bool = False
    cert: str
    key: str
    admin_secret: str
    admin_key: str
    token_secret: str

    _ip = field_validator("address")(_check_ip)
    _refs = field_validator("admin_secret", "admin_key", "token_secret")(_check_ref)

    @field_validator("rtp_ports")
    @classmethod
    def _rtp_ports(cls, value: tuple[int, int]) -> tuple[int, int]:
        lo, hi = value
        if not 0 < lo < hi < 65536:
            raise ValueError("must be [low, high] with 0 < low < high < 65536")
        cascade_lo, cascade_hi = REMOTE_PUBLISHER_PORTS
        if lo <= cascade_hi and hi >= cascade_lo:
            raise ValueError(
                f"must lie outside {cascade_lo}-{cascade_hi}, where Janus 1.1.2's VideoRoom"
                " binds the cascade's remote publishers (open to media nodes only),"
                " e.g. [61000, 65000]"
            )
        return value

    @property
    def browser_host(self) -> str:
        return self.public_host or self.address

    @property
    def nat_1_1(self) -> str | None:
        """The public address when the host binds another one (a 1:1 NAT in front)."""
        return self.address if self.bind_address and self.bind_address != self.address else None


class TurnSpec(_Model):
    """One TURN server (coturn)."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,40}$")
    address: str
    public_host: str = ""
    port: int = Field(default=3478, gt=0, lt=65536)
    tls_port: int = Field(default=443, ge=0, lt=65536)
    realm: str = "diemcau"
    secret: str
    cert: str = ""
    key: str = ""
    relay_ports: tuple[int, int] = (49160, 49999)

    _ip = field_validator("address")(_check_ip)
    _ref = field_validator("secret")(_check_ref)

    def server(self) -> TurnServer:
        """The server as grants name it (its secret resolved; TLS only with a certificate)."""
        return TurnServer(
            name=self.name,
            host=self.public_host or self.address,
            secret=resolve_secret(self.secret, f"turn {self.name} secret"),
            port=self.port,
            tls_port=self.tls_port if self.cert else 0,
            realm=self.realm,
        )


class Inventory(_Model):
    """The whole deployment."""

    control: ControlSpec
    node: tuple[NodeSpec, ...] = Field(min_length=1)
    turn: tuple[TurnSpec, ...] = ()

    @classmethod
    def load(cls, path: Path) -> Inventory:
        """Read and validate ``path``; raises `InventoryError` naming the bad field."""
        try:
            data = tomllib.loads(path.read_text())
        except OSError as exc:
            raise InventoryError(f"{path}: cannot read it ({exc.strerror})") from None
        except tomllib.TOMLDecodeError as exc:
            raise InventoryError(f"{path}: not valid TOML ({exc})") from None
        try:
            inv = cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise InventoryError(f"{path}: {where}: {first['msg']}") from None
        inv.check()
        return inv

    def check(self) -> None:
        names = [n.name for n in self.node] + [t.name for t in self.turn]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise InventoryError(f"duplicate names: {', '.join(dupes)}")
        if sum(1 for n in self.node if n.role == "central") != 1:
            raise InventoryError("exactly one node must have role central")

    def janus_nodes(self) -> list[JanusNode]:
        """The nodes as the control plane drives them (secrets resolved now)."""
        out = []
        for n in self.node:
            where = f"node {n.name}"
            out.append(
                JanusNode(
                    name=n.name,
                    role=n.role,
                    provinces=n.provinces,
                    capacity=n.capacity,
                    ws_url=f"wss://{n.address}:{n.wss_port}",
                    admin_ws_url=f"wss://{n.address}:{n.admin_port}",
                    public_ws_url=f"wss://{n.browser_host}:{n.wss_port}",
                    admin_secret=resolve_secret(n.admin_secret, f"{where} admin_secret"),
                    admin_key=resolve_secret(n.admin_key, f"{where} admin_key"),
                    token_secret=resolve_secret(n.token_secret, f"{where} token_secret"),
                    rtp_host=n.address,
                    rtp_iface=n.bind_address if n.nat_1_1 else "",
                    ca_file=self.control.ca,
                )
            )
        return out

    def turn_servers(self) -> list[TurnServer]:
        return [t.server() for t in self.turn]
