"""A demo child process: simulated sites on the control plane, and in the media child their bots.

``python -m diemcau.demo sim|media --url URL --codes FILE [--chair-grant FILE]``. Both
roles run a `Swarm` whose sites join the live meeting on every (re)connection and when a
meeting starts. The media child also keeps one publisher per site (and the chair's bot,
until SIGUSR1 says a person's console took the chair feed). SIGTERM or SIGINT ends it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import signal
from pathlib import Path

import httpx

from diemcau.demo.publishers import chair_grant_reader, keep_publishing, site_grant_fetcher
from diemcau.records import JsonObject
from diemcau.sim.cli import resolve_site_url
from diemcau.sim.sites import SimOptions, SimSite, Swarm

__all__ = ["child_main", "run_child"]

_JOIN = {"type": "req", "id": "join", "kind": "meeting.join", "body": {}}
_PUBLISHING = {"type": "req", "id": "inspect", "kind": "inspect.publishing", "body": {}}


def _swarm(site_url: str, codes: list[str], role: str) -> Swarm:
    """Sites that join their live meeting on every (re)connection and when one starts."""
    # Protocol 1: thousands of sites in one process keep 1 s heartbeats on time even
    # on a busy machine; sub-second ones (2) made them miss and flap (docs/demo.md).
    options = SimOptions(summary_s=10.0 if role == "sim" else 0.0, join_rate=500.0, protocol=1)
    swarm: Swarm

    def joined(site: SimSite) -> None:
        swarm.send(site, _JOIN)

    def on_message(site: SimSite, msg: JsonObject) -> None:
        if msg.get("kind") == "meeting.started":
            swarm.send(site, _JOIN)
        # A media site's bot publishes all the time: an inspection of it is answered at
        # once (a control-only site sends no picture, and is rightly not answered).
        body = msg.get("body")
        if role != "media" or msg.get("kind") != "inspect.watch" or not isinstance(body, dict):
            return
        if body.get("publish"):
            swarm.send(site, _PUBLISHING)

    swarm = Swarm(site_url, codes, options, on_message=on_message, on_online=joined)
    return swarm


async def _until(source: asyncio.Event, target: asyncio.Event) -> None:
    await source.wait()
    target.set()


async def run_child(role: str, url: str, codes_path: Path, chair_grant: Path | None) -> None:
    """Run the ``role`` child until SIGTERM or SIGINT."""
    listing = json.loads(codes_path.read_text(encoding="utf-8"))
    codes = [str(x["join_code"]) for x in listing]
    labels = [str(x["label"]) for x in listing]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    chair_stop = asyncio.Event()  # SIGUSR1: a person's chair console takes the chair feed
    loop.add_signal_handler(signal.SIGUSR1, chair_stop.set)
    site_url = await loop.run_in_executor(None, resolve_site_url, url)
    runs = [asyncio.create_task(_swarm(site_url, codes, role).run(stop=stop))]
    async with httpx.AsyncClient(base_url=url, timeout=10.0) as client:
        if role == "media":
            runs.append(asyncio.create_task(_until(stop, chair_stop)))
            if chair_grant is not None:
                chair = keep_publishing("CHU TRI", chair_grant_reader(chair_grant), chair_stop)
                runs.append(asyncio.create_task(chair))
            for jc, label in zip(codes, labels, strict=True):
                publish = keep_publishing(label, site_grant_fetcher(client, jc), stop)
                runs.append(asyncio.create_task(publish))
        await stop.wait()
        await asyncio.gather(*runs, return_exceptions=True)


def child_main(argv: list[str]) -> int:
    """Entry point of ``python -m diemcau.demo``."""
    p = argparse.ArgumentParser(prog="python -m diemcau.demo")
    p.add_argument("role", choices=["sim", "media"])
    p.add_argument("--url", required=True)
    p.add_argument("--codes", required=True)
    p.add_argument("--chair-grant", default=None, help="JSON file with the chair's media grant")
    a = p.parse_args(argv)
    # Thousands of long-lived connections: keep full collections rare, or their
    # pauses make this process miss heartbeats (docs/performance.md).
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
    grant = Path(a.chair_grant) if a.chair_grant else None
    asyncio.run(run_child(a.role, a.url, Path(a.codes), grant))
    # Done: a late SIGTERM from the parent (Ctrl-C reached both) must not turn a
    # clean exit into a kill.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return 0
