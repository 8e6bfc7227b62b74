"""The child processes this program starts (Janus, coturn, a lab's PostgreSQL or server).

Each dies with its parent (``prctl(PR_SET_PDEATHSIG)``, `die_with_parent`): a test
run or control process that is killed leaves nothing running with nobody to stop
it. Each is ended by its own PID only, never by name: a polite signal first, then
SIGKILL once a grace period has passed, and always reaped, so no zombie and no
stray process outlives a test or a lab run. The stop polls instead of blocking,
so the event loop serving everything else keeps running meanwhile.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["ChildProcess", "die_with_parent", "log_tail"]

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: signal.Signals) -> None:
    """In a child, before exec: it gets ``sig`` when the thread that started it ends.

    Set after any change of user (which clears it).
    """
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, sig)


def log_tail(path: Path | None, lines: int) -> str:
    """The last ``lines`` lines of a child's log ("" when there is none yet)."""
    if path is None:
        return ""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class ChildProcess:
    """Mixin for the owner of one child process, held in ``proc`` (None until started)."""

    proc: subprocess.Popen[bytes] | None

    def spawn_quiet(self, argv: Sequence[str], netns: str | None = None) -> None:
        """Start ``argv`` (inside the network namespace file ``netns``, if given) in a
        session of its own, without stdio, SIGTERMed when its parent dies."""
        enter = ["nsenter", f"--net={netns}", "--"] if netns else []
        self.proc = subprocess.Popen(  # noqa: S603 - our own argv
            [*enter, *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=functools.partial(die_with_parent, signal.SIGTERM),
        )

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the process (by PID), then reap it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    async def halt(self, grace: float, sig: signal.Signals = signal.SIGTERM) -> int | None:
        """Send ``sig``, SIGKILL after ``grace`` seconds; returns the exit status."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(sig)
            deadline = time.monotonic() + grace
            while proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        return proc.returncode

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process so far (its threads included)."""
        if self.proc is None:
            return 0.0
        with open(f"/proc/{self.proc.pid}/stat") as f:
            stat = f.read()
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
