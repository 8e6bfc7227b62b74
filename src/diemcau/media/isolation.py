"""An isolated network namespace on loopback addresses for tests and the sandboxed demo.

Janus 1.1.2 never gathers ICE candidates on an interface flagged loopback, and
aioice drops 127.0.0.1 (docs/media.md, "Isolated mode"). Inside a private network
namespace we
bring up ``lo`` and add an ``ifb`` device ``jlo0`` carrying 127.0.0.2/32; Janus
runs with ``ice_enforce_list = "jlo0"`` and media bots gather only 127.0.0.2.
The whole process (and every child: Janus, Chromium) moves into the namespace,
so nothing it does can leave the machine. Needs root.

Whether we are inside is asked of the kernel for *this* namespace
(``if_nametoindex``): ``/sys/class/net`` shows the namespace sysfs was mounted
from (the host's), not ours, since ``unshare`` does not remount it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import socket
import subprocess
import threading

__all__ = ["MEDIA_IFACE", "MEDIA_ADDR", "enter_isolated_netns", "in_isolated_netns"]

MEDIA_IFACE = "jlo0"
MEDIA_ADDR = "127.0.0.2"
_CLONE_NEWNET = 0x40000000


def in_isolated_netns() -> bool:
    """True when this process's network namespace has the media interface."""
    try:
        socket.if_nametoindex(MEDIA_IFACE)
    except OSError:
        return False
    return True


def enter_isolated_netns() -> None:
    """Move this process into a fresh, private network namespace with loopback media.

    Must run before any thread starts (``unshare`` acts on the calling thread, and
    the other threads would stay behind). Idempotent within one process.
    """
    if in_isolated_netns():
        return
    if threading.active_count() > 1:
        raise RuntimeError("enter_isolated_netns must run before any thread starts")
    if os.geteuid() != 0:
        raise PermissionError("an isolated network namespace needs root")
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.unshare(_CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare(CLONE_NEWNET) failed: {os.strerror(err)}")
    for cmd in (
        ["ip", "link", "set", "lo", "up"],
        ["ip", "link", "add", MEDIA_IFACE, "type", "ifb"],
        ["ip", "addr", "add", f"{MEDIA_ADDR}/32", "dev", MEDIA_IFACE],
        ["ip", "link", "set", MEDIA_IFACE, "up"],
    ):
        subprocess.run(cmd, check=True, capture_output=True)


def restrict_aioice_to_media_addr() -> None:
    """Make aioice (aiortc's ICE) gather the media address and no other loopback one.

    IPv4 only, and of the 127/8 addresses only 127.0.0.2. Any other address
    present is one of a lab namespace joined to this one (`diemcau.lab`: the
    control host's backbone addresses, documentation ranges): bots there must
    gather it to reach the lab's nodes. The list is read at every gathering,
    so it follows the lab being built and torn down.
    """
    import aioice.ice

    original = getattr(aioice.ice, "_diemcau_host_addresses", aioice.ice.get_host_addresses)

    def _addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        if not use_ipv4:
            return []
        found: list[str] = original(True, False)
        return [MEDIA_ADDR] + [a for a in found if not a.startswith("127.")]

    aioice.ice._diemcau_host_addresses = original  # type: ignore[attr-defined]
    aioice.ice.get_host_addresses = _addresses
