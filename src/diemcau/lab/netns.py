"""Network namespaces that stop by themselves, and commands run inside them.

Each namespace is held by a ``sleep`` process created in it (``unshare``) with
``PR_SET_PDEATHSIG = SIGKILL``: when the process that built the lab dies, by
Ctrl-C, an exception or ``kill -9``, the holders die and the kernel removes the
namespaces with their veth pairs and routes. Nothing is bind-mounted under
``/run/netns`` and no interface of the caller's own namespace is touched unless
the caller asks (`Host.here`). Needs root.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
from dataclasses import dataclass, field

from diemcau.processes import die_with_parent

__all__ = ["Host", "LabError"]

_CLONE_NEWNET = 0x40000000


class LabError(Exception):
    """A lab command failed; the message names the host and the command."""


def _holder_preexec() -> None:
    die_with_parent(signal.SIGKILL)
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.unshare(_CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET) failed")


@dataclass
class Host:
    """One lab host: a network namespace and how to run commands in it.

    Attributes:
        name: the lab's name for it (``relay1``, ``nat-pc`` ...).
        pid: the process whose namespace this is.
    """

    name: str
    pid: int
    holder: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @classmethod
    def new(cls, name: str) -> Host:
        """A fresh namespace with ``lo`` up, held until `close` or the caller's death."""
        if os.geteuid() != 0:
            raise PermissionError("the lab needs root (network namespaces)")
        proc = subprocess.Popen(
            ["sleep", "infinity"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_holder_preexec,
        )
        host = cls(name, proc.pid, proc)
        host.run("ip", "link", "set", "lo", "up")
        return host

    @classmethod
    def here(cls, name: str) -> Host:
        """This process's own namespace as a lab host (it must be a private one)."""
        return cls(name, os.getpid(), None)

    @property
    def netns(self) -> str:
        """The namespace file, for ``nsenter --net=`` and `LocalJanusProcess.netns`."""
        return f"/proc/{self.pid}/ns/net"

    def command(self, *argv: str) -> list[str]:
        """``argv`` wrapped to run inside this namespace."""
        if self.holder is None and self.pid == os.getpid():
            return list(argv)
        return ["nsenter", f"--net={self.netns}", "--", *argv]

    def run(self, *argv: str, check: bool = True) -> str:
        """Run a command inside the namespace; raise `LabError` with its stderr on failure."""
        out = subprocess.run(self.command(*argv), capture_output=True, text=True, timeout=30)
        if check and out.returncode != 0:
            raise LabError(f"{self.name}: {' '.join(argv)}: {out.stderr.strip()}")
        return out.stdout

    def batch(self, lines: list[str]) -> None:
        """Several ``ip`` commands at once (``ip -batch``)."""
        if not lines:
            return
        cmd = self.command("ip", "-batch", "-")
        out = subprocess.run(cmd, input="\n".join(lines) + "\n", capture_output=True, text=True)
        if out.returncode != 0:
            raise LabError(f"{self.name}: ip -batch: {out.stderr.strip()}")

    def nft(self, ruleset: str) -> None:
        out = subprocess.run(
            self.command("nft", "-f", "-"), input=ruleset, capture_output=True, text=True
        )
        if out.returncode != 0:
            raise LabError(f"{self.name}: nft: {out.stderr.strip()}")

    def close(self) -> None:
        """Kill the holder (by PID); the namespace goes when its last process leaves."""
        if self.holder is not None and self.holder.poll() is None:
            self.holder.kill()
            self.holder.wait()
