"""Time-limited TURN credentials (the TURN REST shared-secret scheme) for media grants.

Commune offices sit behind NAT, some behind firewalls that let only TCP 443
out; TURN carries them. coturn (``use-auth-secret``) accepts a username
``<expiry unix time>:<label>`` with the password base64(HMAC-SHA1(secret,
username)), so the control server mints credentials itself, without a round
trip, and they stop working at the expiry they carry. coturn checks them on
every Allocate and Refresh, so they must outlive the media session: grants give
them the expiry of their core token (``session_expires_at``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypedDict

__all__ = ["IceServer", "TurnServer", "ice_servers", "turn_credentials"]


@dataclass(frozen=True)
class TurnServer:
    """One TURN server as browsers reach it.

    Attributes:
        name: its name in the inventory.
        host: the address or DNS name browsers use (its TLS certificate names it).
        secret: the ``static-auth-secret`` shared with coturn.
        port: UDP and TCP listening port (3478).
        tls_port: TURN over TLS (443, the port tcp-only networks let out); 0: none.
        realm: the TURN realm.
    """

    name: str
    host: str
    secret: str
    port: int = 3478
    tls_port: int = 443
    realm: str = "diemcau"

    def urls(self) -> list[str]:
        """UDP, TCP and TLS-on-443 URLs (RFC 7065)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        out = [f"turn:{host}:{self.port}?transport=udp", f"turn:{host}:{self.port}?transport=tcp"]
        if self.tls_port:
            out.append(f"turns:{host}:{self.tls_port}?transport=tcp")
        return out


def turn_credentials(secret: str, label: str, expires_at: int) -> tuple[str, str]:
    """The (username, password) pair coturn accepts until ``expires_at`` (Unix seconds)."""
    if ":" in label:
        raise ValueError("a TURN credential label must not contain ':'")
    username = f"{int(expires_at)}:{label}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


class IceServer(TypedDict):
    """An ``iceServers`` entry of a grant (an RTCIceServer dictionary)."""

    urls: list[str]
    username: str
    credential: str


def ice_servers(servers: Sequence[TurnServer], label: str, expires_at: int) -> list[IceServer]:
    """The ``iceServers`` entries of a grant (RTCIceServer dictionaries), one per server."""
    out: list[IceServer] = []
    for server in servers:
        username, credential = turn_credentials(server.secret, label, expires_at)
        out.append({"urls": server.urls(), "username": username, "credential": credential})
    return out
