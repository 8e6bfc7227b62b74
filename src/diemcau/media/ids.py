"""The VideoRoom and publisher ids of the media plane, derived from names.

The same name gives the same id on every node and after every restart, so a
restarted control plane finds its rooms again (`reconcile`) and a page can be
told a feed id without asking any node.
"""

from __future__ import annotations

import hashlib

__all__ = ["feed_id", "room_id"]


def _id48(text: str) -> int:
    # 48 bits: unique enough, and exact in JavaScript numbers.
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:6], "big") or 1


def room_id(kind: str, key: str) -> int:
    """The VideoRoom id of ``program``/``uplink`` room ``key``."""
    return _id48(f"room:{kind}:{key}")


def feed_id(kind: str, key: str) -> int:
    """The publisher id of the ``chair`` of a meeting or of a ``site``."""
    return _id48(f"feed:{kind}:{key}")
