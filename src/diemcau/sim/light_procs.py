"""The light swarm spread over child processes, driven as one by a benchmark.

One Python process cannot both play 10,794 sites and leave the server's timing
alone: a broadcast's last arrivals would wait for the swarm's own loop. So a
benchmark starts `SwarmProcesses`: `parts` children (``python -m
diemcau.sim.light_procs``), each running a `LightSwarm` over its share of the
join codes. A child records, without decoding JSON, the wall-clock arrival of
the messages it was told to watch (by ``kind``, keyed by one numeric body field
such as a floor ``version``) and can answer a kind with a prebuilt request (a
site joining the meeting it was told of). Every process reads the same wall
clock, so the benchmark subtracts its own send times.

Commands (one line each on the child's stdin, one JSON answer line on stdout):
``connect``, ``silence K``, ``arrivals`` (and forget them), ``quit``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TypedDict

from diemcau.sim.light import LightSite, LightSwarm

__all__ = ["Joined", "SwarmProcesses", "Watch"]


class Watch:
    """Which message kinds a child records: ``kind`` or ``kind:field`` (field numeric)."""

    def __init__(self, spec: str) -> None:
        kind, _, key = spec.partition(":")
        self.spec = spec
        self.marker = b'"kind":' + json.dumps(kind).encode()
        self.key = b'"' + key.encode() + b'":' if key else b""

    def value(self, payload: bytes) -> str | None:
        """The recorded key of a payload of this kind ("" without a field); None if not."""
        if self.marker not in payload:
            return None
        if not self.key:
            return ""
        i = payload.rfind(self.key)
        if i < 0:
            return None
        j = k = i + len(self.key)
        while k < len(payload) and payload[k] not in b",}]":
            k += 1
        return payload[j:k].decode()


async def _child(args: argparse.Namespace) -> None:
    from diemcau.sim.sites import raise_fd_limit

    raise_fd_limit()
    codes = Path(args.codes).read_text().split()[args.part :: args.parts]
    watches = [Watch(spec) for spec in args.watch]
    answers = {Watch(kind).marker: frame.encode() for kind, frame in args.answer}
    arrivals: dict[str, list[float]] = {}

    def on_payload(site: LightSite, payload: bytes) -> None:
        now = time.time()
        for w in watches:
            key = w.value(payload)
            if key is not None:
                arrivals.setdefault(f"{w.spec}={key}", []).append(now)
        for marker, frame in answers.items():
            if marker in payload:
                site.send_text(frame)

    swarm = LightSwarm(
        args.host, args.port, args.path, codes, version=args.version, on_payload=on_payload
    )
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    beats: asyncio.Task[None] | None = None

    def emit(obj: Mapping[str, object]) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    emit({"ev": "ready", "sites": len(codes)})
    while True:
        line = (await reader.readline()).decode().strip()
        if not line or line == "quit":
            break
        cmd, *rest = line.split()
        if cmd == "connect":
            beats = asyncio.create_task(swarm.heartbeats())
            secs = await swarm.connect_all()
            emit({"ev": "joined", "n": swarm.welcomed, "failed": swarm.failed, "secs": secs})
        elif cmd == "silence":
            emit({"ev": "silenced", "sites": swarm.silence(int(rest[0])), "t": time.time()})
        elif cmd == "arrivals":
            emit({"ev": "arrivals", "arrivals": arrivals, "lost": swarm.lost_count})
            arrivals = {}
        elif cmd == "count":
            counts = {k: len(v) for k, v in arrivals.items()}
            counts["heartbeats sent"] = swarm.heartbeats_sent
            emit({"ev": "count", "counts": counts})
    if beats is not None:
        beats.cancel()
    swarm.close()


class Joined(TypedDict):
    """A child's (or all children's) answer to ``connect``."""

    n: int
    failed: int
    secs: float


class Counted(TypedDict):
    counts: dict[str, int]


class Arrived(TypedDict):
    arrivals: dict[str, list[float]]


class Silenced(TypedDict):
    sites: list[int]
    t: float


class _Proc:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def ask(self, command: str, timeout: float) -> bytes:
        """Send ``command`` (none: just read); the child's JSON answer line."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if command:
            self.proc.stdin.write((command + "\n").encode())
            await self.proc.stdin.drain()
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"swarm process ended (exit {await self.proc.wait()})")
        return line


class SwarmProcesses:
    """`parts` light swarm children over one list of join codes, driven as one swarm.

    Args:
        url_host, port, path: the site socket.
        codes_file: one join code per line (child `i` takes every `parts`-th from `i`).
        parts: child processes.
        version: the protocol version of the hellos.
        watch: message kinds to record (`Watch` specs).
        answer: ``(kind, text)``: on a message of `kind`, the site sends `text`.
        python: the interpreter to run children with.
    """

    def __init__(
        self,
        host: str,
        port: int,
        path: str,
        codes_file: Path,
        *,
        parts: int = 2,
        version: int = 2,
        watch: Sequence[str] = (),
        answer: Sequence[tuple[str, str]] = (),
        python: str = sys.executable,
    ) -> None:
        self.argv = [python, "-m", "diemcau.sim.light_procs", "--host", host, "--port", str(port)]
        self.argv += ["--path", path, "--codes", str(codes_file), "--parts", str(parts)]
        self.argv += ["--version", str(version)]
        for spec in watch:
            self.argv += ["--watch", spec]
        for kind, text in answer:
            self.argv += ["--answer", kind, text]
        self.parts = parts
        self.procs: list[_Proc] = []

    async def start(self) -> None:
        for i in range(self.parts):
            proc = await asyncio.create_subprocess_exec(
                *self.argv,
                "--part",
                str(i),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                limit=1 << 28,
            )
            self.procs.append(_Proc(proc))
        await asyncio.gather(*(p.ask("", 60) for p in self.procs))

    async def _all(self, command: str, timeout: float = 600) -> list[bytes]:
        return list(await asyncio.gather(*(p.ask(command, timeout) for p in self.procs)))

    async def connect(self) -> Joined:
        """Connect every site; ``n`` welcomed, ``failed``, ``secs`` until the last welcome."""
        got: list[Joined] = [json.loads(line) for line in await self._all("connect")]
        return {
            "n": sum(g["n"] for g in got),
            "failed": sum(g["failed"] for g in got),
            "secs": max(g["secs"] for g in got),
        }

    async def counts(self) -> dict[str, int]:
        """Arrivals recorded so far per watched key (not forgotten), and the heartbeats
        written so far under the key ``heartbeats sent``."""
        total: dict[str, int] = {}
        got: list[Counted] = [json.loads(line) for line in await self._all("count")]
        for g in got:
            for k, n in g["counts"].items():
                total[k] = total.get(k, 0) + n
        return total

    async def arrivals(self) -> dict[str, list[float]]:
        """Every arrival recorded since the last call, per ``spec=key``."""
        merged: dict[str, list[float]] = {}
        got: list[Arrived] = [json.loads(line) for line in await self._all("arrivals")]
        for g in got:
            for k, times in g["arrivals"].items():
                merged.setdefault(k, []).extend(times)
        return merged

    async def silence(self, k: int) -> tuple[set[int], float]:
        """Stop heartbeats of about `k` sites; their site ids and when."""
        lines = await self._all(f"silence {-(-k // self.parts)}")
        got: list[Silenced] = [json.loads(line) for line in lines]
        return {s for g in got for s in g["sites"]}, min(g["t"] for g in got)

    async def stop(self) -> None:
        for p in self.procs:
            try:
                assert p.proc.stdin is not None
                p.proc.stdin.write(b"quit\n")
                await p.proc.stdin.drain()
                await asyncio.wait_for(p.proc.wait(), 30)
            except (TimeoutError, ConnectionError):
                p.proc.kill()
                await p.proc.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="one light swarm child (see SwarmProcesses)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/site")
    parser.add_argument("--codes", required=True)
    parser.add_argument("--part", type=int, default=0)
    parser.add_argument("--parts", type=int, default=1)
    parser.add_argument("--version", type=int, default=2)
    parser.add_argument("--watch", action="append", default=[])
    parser.add_argument("--answer", nargs=2, action="append", default=[])
    parser.add_argument("--loop", default="uvloop", choices=("uvloop", "asyncio"))
    args = parser.parse_args(argv)
    from diemcau.presence.tuning import run_with_loop

    run_with_loop(_child(args), args.loop)


if __name__ == "__main__":
    main()
