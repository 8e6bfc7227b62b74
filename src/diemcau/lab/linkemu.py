"""A commune's weak link in the lab: delay, jitter and loss between a LAN's router and PC.

``tc netem`` would do this on a veth, but kernels without ``sch_netem`` exist
(this project's build machines among them), so a LAN the lab emulates is joined
by two TUN devices instead of a veth: ``lan`` in the router's namespace and
``eth0`` in the PC's, and a small process forwards every IP packet between them
after a delay drawn from ``delay ± jitter`` (uniform, order kept: a late packet
holds the ones behind it, as on a real queue) and drops ``loss`` % of them at
random, each direction on its own settings. A bandwidth cap is the kernel's
``tbf`` on the same devices (`diemcau.lab.network.Lab.shape`).

`LinkEmulator` starts and steers that process; the process (``python -m
diemcau.lab.linkemu``) opens the two devices inside the namespaces named on its
command line, prints ``ready``, then reads one JSON line of settings per change
on stdin (answering ``ok`` with its counters) and ends with its parent.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import fcntl
import functools
import heapq
import json
import os
import random
import select
import signal
import struct
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from typing import IO

from diemcau.processes import die_with_parent

__all__ = ["Impairment", "LinkEmulator"]

_TUNSETIFF = 0x400454CA
_IFF_TUN = 0x0001
_IFF_NO_PI = 0x1000
_CLONE_NEWNET = 0x40000000
_MTU = 1500


@dataclass(frozen=True)
class Impairment:
    """One direction of a weak link.

    Attributes:
        loss_pct: packets dropped at random, in percent.
        delay_ms: one-way delay added.
        jitter_ms: the delay varies uniformly within ``delay ± jitter``.
    """

    loss_pct: float = 0.0
    delay_ms: float = 0.0
    jitter_ms: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.loss_pct <= 100:
            raise ValueError(f"loss_pct must be within 0-100, not {self.loss_pct}")
        if self.delay_ms < 0 or self.jitter_ms < 0 or self.jitter_ms > self.delay_ms:
            raise ValueError(
                f"need 0 <= jitter_ms <= delay_ms, not {self.jitter_ms} and {self.delay_ms}"
            )


class LinkEmulator:
    """The forwarding process between a router's ``lan`` and its PC's ``eth0``.

    Args:
        router_netns, pc_netns: the namespaces' files (``/proc/<pid>/ns/net``).
    """

    def __init__(self, router_netns: str, pc_netns: str) -> None:
        self._args = [f"{router_netns}:lan", f"{pc_netns}:eth0"]
        self._proc: subprocess.Popen[str] | None = None
        self.down = Impairment()
        self.up = Impairment()

    def start(self) -> None:
        """Start the process; returns once both devices exist (unconfigured)."""
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "diemcau.lab.linkemu", *self._args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=functools.partial(die_with_parent, signal.SIGKILL),
        )
        line = self._read()
        if line != "ready":
            self.stop()
            raise RuntimeError(f"the link emulator did not start: {line!r}")

    def _read(self) -> str:
        assert self._proc is not None and self._proc.stdout is not None
        return self._proc.stdout.readline().strip()

    def set(self, down: Impairment, up: Impairment) -> dict[str, dict[str, int]]:
        """New settings for each direction (down: router to PC); returns the counters."""
        proc = self._proc
        if proc is None or proc.poll() is not None or proc.stdin is None:
            raise RuntimeError("the link emulator is not running")
        proc.stdin.write(json.dumps({"down": asdict(down), "up": asdict(up)}) + "\n")
        proc.stdin.flush()
        reply: dict[str, dict[str, int]] = json.loads(self._read())
        self.down, self.up = down, up
        return reply

    def counters(self) -> dict[str, dict[str, int]]:
        """Packets forwarded and dropped per direction so far."""
        return self.set(self.down, self.up)

    def stop(self) -> None:
        """End the process (by PID); its devices go with it."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()


def _open_tun(netns: str, name: str) -> int:
    """A TUN device ``name`` created inside ``netns`` (this thread enters it to do so)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    ns = os.open(netns, os.O_RDONLY)
    try:
        if libc.setns(ns, _CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns({netns}) failed")
    finally:
        os.close(ns)
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, _TUNSETIFF, struct.pack("16sH", name.encode(), _IFF_TUN | _IFF_NO_PI))
    os.set_blocking(fd, False)
    return fd


class _Direction:
    def __init__(self, src: int, dst: int) -> None:
        self.src, self.dst = src, dst
        self.imp = Impairment()
        self.last_due = 0.0
        self.forwarded = 0
        self.dropped = 0

    def due(self, now: float) -> float | None:
        """When a packet read now leaves, or None to drop it."""
        imp = self.imp
        if imp.loss_pct and random.random() * 100 < imp.loss_pct:  # noqa: S311 - not crypto
            self.dropped += 1
            return None
        spread = random.uniform(-imp.jitter_ms, imp.jitter_ms) if imp.jitter_ms else 0.0  # noqa: S311
        delay = imp.delay_ms + spread
        self.last_due = max(now + delay / 1000.0, self.last_due)
        return self.last_due


def _serve(a: int, b: int, commands: IO[str]) -> None:
    down, up = _Direction(a, b), _Direction(b, a)
    by_fd = {a: down, b: up}
    queue: list[tuple[float, int, int, bytes]] = []
    order = 0
    while True:
        timeout = max(0.0, queue[0][0] - time.monotonic()) if queue else 1.0
        ready, _, _ = select.select([a, b, commands.fileno()], [], [], timeout)
        now = time.monotonic()
        for fd in ready:
            if fd == commands.fileno():
                line = commands.readline()
                if not line:
                    return
                cfg = json.loads(line)
                down.imp, up.imp = Impairment(**cfg["down"]), Impairment(**cfg["up"])
                counts = {
                    name: {"forwarded": d.forwarded, "dropped": d.dropped}
                    for name, d in (("down", down), ("up", up))
                }
                print(json.dumps(counts), flush=True)
                continue
            d = by_fd[fd]
            while True:
                try:
                    packet = os.read(fd, _MTU + 64)
                except BlockingIOError:
                    break
                at = d.due(now)
                if at is not None:
                    order += 1
                    heapq.heappush(queue, (at, order, d.dst, packet))
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, dst, packet = heapq.heappop(queue)
            try:
                os.write(dst, packet)
                by_fd[a if dst == b else b].forwarded += 1
            except OSError:
                pass  # the device is down (the lab is going away)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="forward IP packets between two TUN devices")
    p.add_argument("router", help="NETNS_FILE:DEVICE on the router side")
    p.add_argument("pc", help="NETNS_FILE:DEVICE on the PC side")
    args = p.parse_args(argv)
    a = _open_tun(*args.router.rsplit(":", 1))
    b = _open_tun(*args.pc.rsplit(":", 1))
    print("ready", flush=True)
    _serve(a, b, sys.stdin)
    return 0


if __name__ == "__main__":
    sys.exit(main())
