"""A private PostgreSQL cluster on a lab host, as a control host runs in production.

`LabPostgres` makes a fresh cluster (``initdb``) in a temporary folder owned
by the ``postgres`` user, starts ``postgres`` inside the host's network
namespace listening on the host's lab address (so another lab host, e.g. a
standby, can reach it over the bridge, with a password) and on a Unix socket
in that folder (the superuser's, trusted locally), and creates the
``diemcau`` role and database. `pause` and `resume` restart it on the same
data (a store restarted under a running control server, docs/reliability.md).
The server dies with the process that started it (``PR_SET_PDEATHSIG``: an
immediate shutdown) and `stop` removes the folder. Needs root and Debian's
``postgresql`` package.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from diemcau.lab.netns import Host, LabError
from diemcau.processes import ChildProcess, die_with_parent, log_tail

__all__ = ["LabPostgres"]

_CLONE_NEWNET = 0x40000000
PG_ROOT = Path("/usr/lib/postgresql")


def _bin(name: str) -> str:
    versions = sorted((p for p in PG_ROOT.glob("*/bin") if (p / name).exists()), key=_version)
    if not versions:
        raise LabError(f"PostgreSQL's {name} is not installed (Debian package postgresql)")
    return str(versions[-1] / name)


def _version(path: Path) -> int:
    text = path.parent.name
    return int(text) if text.isdigit() else 0


def _preexec(netns: str | None, uid: int, gid: int) -> None:
    """In the child: join the host's namespace, become ``postgres``, die with the parent.

    The death signal is set last: changing the user clears it.
    """
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if netns is not None:
        fd = os.open(netns, os.O_RDONLY)
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns failed")
        os.close(fd)
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    die_with_parent(signal.SIGQUIT)


@dataclass
class LabPostgres(ChildProcess):
    """PostgreSQL on a lab host.

    Args:
        host: the lab host it runs on (its namespace).
        listen: the host's lab address to listen on (e.g. 198.51.100.10).
        port: its TCP port.
        allow: the network allowed to log in over TCP (the lab's backbone).
    """

    host: Host
    listen: str
    port: int = 5432
    allow: str = "198.51.100.0/24"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    folder: Path | None = field(default=None, init=False)
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        """The ``diemcau`` database over TCP on the lab address (SQLAlchemy URL)."""
        return f"postgresql+asyncpg://diemcau:{self.password}@{self.listen}:{self.port}/diemcau"

    def _netns(self) -> str | None:
        return None if self.host.holder is None else self.host.netns

    def _run_as_postgres(self, argv: list[str]) -> None:
        user = pwd.getpwnam("postgres")
        out = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=120,
            preexec_fn=lambda: _preexec(self._netns(), user.pw_uid, user.pw_gid),
        )
        if out.returncode != 0:
            raise LabError(f"{self.host.name}: {Path(argv[0]).name}: {out.stderr.strip()[-400:]}")

    def _init(self, folder: Path) -> Path:
        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
        data = folder / "data"
        self._run_as_postgres(
            [_bin("initdb"), "-D", str(data), "-U", "postgres", "-E", "UTF8", "--no-sync",
             "--auth-local=trust", "--auth-host=scram-sha-256"]
        )  # fmt: skip
        with (data / "postgresql.conf").open("a") as f:
            f.write(
                f"listen_addresses = '{self.listen}'\nport = {self.port}\n"
                f"unix_socket_directories = '{folder}'\n"
            )
        with (data / "pg_hba.conf").open("a") as f:
            f.write(f"host all all {self.allow} scram-sha-256\n")
        return data

    async def start(self, timeout: float = 30.0) -> str:
        """initdb, start, create the role and database; returns `url`."""
        folder = Path(tempfile.mkdtemp(prefix="diemcau-lab-pg-"))
        self.folder = folder
        try:
            self._init(folder)
            self._launch()
            await self._wait_ready(timeout)
            await self._create_database()
        except BaseException:
            await self.stop()
            raise
        return self.url

    def _launch(self) -> None:
        assert self.folder is not None
        user = pwd.getpwnam("postgres")
        self.proc = subprocess.Popen(
            [_bin("postgres"), "-D", str(self.folder / "data")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=(self.folder / "postgres.log").open("ab"),
            start_new_session=True,
            preexec_fn=lambda: _preexec(self._netns(), user.pw_uid, user.pw_gid),
        )

    async def pause(self, grace: float = 10.0) -> None:
        """Stop the server as an operator's restart does (fast shutdown: every session
        ended), keeping its data for `resume`."""
        await self.halt(grace, signal.SIGINT)

    async def resume(self, timeout: float = 30.0) -> None:
        """Start the server again on the same data after `pause`."""
        if self.folder is None:
            raise LabError("resume: this cluster was never started")
        self._launch()
        await self._wait_ready(timeout)

    async def _superuser(self) -> asyncpg.Connection:
        conn: asyncpg.Connection = await asyncpg.connect(
            host=str(self.folder), port=self.port, user="postgres", database="postgres"
        )
        return conn

    async def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise LabError(f"postgres exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                conn = await self._superuser()
            except (OSError, asyncpg.PostgresError) as exc:
                last = exc
                await asyncio.sleep(0.1)
                continue
            await conn.close()
            return
        raise TimeoutError(f"postgres not ready in {timeout}s: {last}")

    async def _create_database(self) -> None:
        conn = await self._superuser()
        try:
            pw = self.password.replace("'", "''")
            await conn.execute(f"CREATE ROLE diemcau LOGIN CREATEDB PASSWORD '{pw}'")
            await conn.execute("CREATE DATABASE diemcau OWNER diemcau")
        finally:
            await conn.close()

    def log_tail(self, lines: int = 10) -> str:
        return log_tail(self.folder / "postgres.log" if self.folder is not None else None, lines)

    async def stop(self, grace: float = 10.0) -> None:
        """Fast shutdown (SIGINT), SIGKILL after ``grace``; by PID. Removes the folder."""
        await self.halt(grace, signal.SIGINT)
        if self.folder is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(self.folder)
            self.folder = None
