"""Media nodes declared in configuration, for deployments where Janus runs elsewhere.

A JSON file (path in ``DIEMCAU_MEDIA_NODES``) holds a list of nodes::

    [{"name": "central", "role": "central",
      "ws_url": "ws://10.0.0.10:8188", "admin_ws_url": "ws://10.0.0.10:7188",
      "public_ws_url": "wss://media.example.gov/central",
      "admin_secret": "...", "admin_key": "...", "token_secret": "...",
      "rtp_host": "10.0.0.10"},
     {"name": "relay-79", "role": "relay", "provinces": ["79"], "capacity": 800, ...}]

Secrets may be given as ``"env:NAME"`` to read them from the environment.
Every Janus node must be configured to match (admin_secret, plugin
admin_key, token_auth_secret, lock_rtp_forward); `LocalJanusProcess.write_config`
shows the exact settings.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from diemcau.media.node import JanusNode

__all__ = ["load_nodes", "nodes_from_env"]

_REQUIRED = ("name", "role", "ws_url", "admin_ws_url", "admin_secret", "admin_key", "token_secret")
_SECRETS = ("admin_secret", "admin_key", "token_secret")


def _secret(value: str, where: str) -> str:
    if value.startswith("env:"):
        got = os.environ.get(value[4:])
        if not got:
            raise ValueError(f"{where}: environment variable {value[4:]} is not set")
        return got
    return value


def _node(raw: object, index: int) -> JanusNode:
    where = f"media node #{index + 1}"
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected an object")
    missing = [k for k in _REQUIRED if not raw.get(k)]
    if missing:
        raise ValueError(f"{where}: missing {', '.join(missing)}")
    if raw["role"] not in ("central", "relay"):
        raise ValueError(f"{where}: role must be central or relay, not {raw['role']!r}")
    unknown = set(raw) - {*JanusNode.__dataclass_fields__}
    if unknown:
        raise ValueError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    fields = dict(raw)
    for key in _SECRETS:
        fields[key] = _secret(str(fields[key]), f"{where} {key}")
    fields["provinces"] = tuple(str(p) for p in fields.get("provinces", ()))
    capacity = fields.get("capacity", 500)
    if not isinstance(capacity, int) or capacity <= 0:
        raise ValueError(f"{where}: capacity must be a positive integer")
    return JanusNode(**fields)


def load_nodes(path: Path) -> list[JanusNode]:
    """Read and validate a node list; raises ValueError naming the bad entry."""
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, list) or not data:
        raise ValueError(f"{path}: expected a non-empty list of nodes")
    nodes = [_node(raw, i) for i, raw in enumerate(data)]
    names = [n.name for n in nodes]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: duplicate node names")
    if sum(1 for n in nodes if n.role == "central") != 1:
        raise ValueError(f"{path}: exactly one central node is required")
    return nodes


def nodes_from_env() -> list[JanusNode] | None:
    """The nodes declared by ``DIEMCAU_MEDIA_NODES``, or None when unset."""
    path = os.environ.get("DIEMCAU_MEDIA_NODES")
    return load_nodes(Path(path)) if path else None
