"""One demo run: prepare the store, start Janus and the server, drive the meeting, stop cleanly.

The order (docs/demo.md): a fresh store; the local Janus processes, declared to the
server as its media nodes; the control server; then, once it answers, the live meeting,
the child processes, the chair's stand-in, the floor rotation and the command-center
samples. Ctrl-C (or ``--duration``) stops the children first, while the server still
answers them, then the server, then Janus.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import secrets
import shutil
import signal
import time
from pathlib import Path

from diemcau.accounts.service import StaffPrincipal, authenticate_staff
from diemcau.config import Settings
from diemcau.demo.chair import ChairStandIn
from diemcau.demo.children import Children
from diemcau.demo.floor import rotate_floor
from diemcau.demo.janus import declare_nodes, start_local_janus
from diemcau.demo.output import print_welcome, say, since_launch, write_state
from diemcau.demo.pacing import StopRequest, settle
from diemcau.demo.prepare import Prepared, prepare
from diemcau.demo.samples import file_samples
from diemcau.demo.services import DemoServices, meetings_actor, services_of
from diemcau.demo.sites import Cast, cast_sites
from diemcau.demo.status import media_status, report_status
from diemcau.media.cluster import LocalCluster
from diemcau.meetings.invites import InviteSpec
from diemcau.runtime import Runtime
from diemcau.tasks import cancel_and_wait
from diemcau.tls.certs import ServerFiles

__all__ = ["Demo", "MEETING_TITLE", "run"]

MEETING_TITLE = "Họp trực tuyến toàn quốc"
LOOP_GRACE_S = 10.0
AGENDA = "Giới thiệu hệ thống điểm cầu; báo cáo tình hình các địa phương; kết luận."


class Demo:
    """The demo's part inside the server process, once the server answers."""

    def __init__(self, args: argparse.Namespace, settings: Settings, password: str) -> None:
        self.args = args
        self.settings = settings
        self.password = password
        self.prepared = Prepared()
        self.media_started_at = 0.0
        self.children = Children(
            settings.data_dir, settings.resolved_public_url(), {"DIEMCAU_DEMO_PASSWORD": password}
        )
        self.stand_in: ChairStandIn | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()

    async def on_ready(self, runtime: Runtime) -> None:
        """Start the meeting and everything that plays in it."""
        services = services_of(runtime)
        base = self.settings.resolved_public_url()
        say(f"control server up at {base}/")
        assignment: dict[str, str] | None = None
        if services.media is not None:
            say(f"media: {media_status(services.media)} in {self._media_seconds():.1f} s")
            assignment = dict(services.media.plan.assignment)
        cast = cast_sites(
            self.prepared.sites, assignment, self.args.media_sites, self.args.sim_sites
        )
        if services.media is not None:
            relays = sorted({services.media.plan.assignment[s.code] for s in cast.media})
            say(f"media sites: {len(cast.media)} on {', '.join(relays)}")
        chair = await self._chair(services)
        meeting_id = await self._start_meeting(services, chair)
        say(
            f"meeting {meeting_id} '{MEETING_TITLE}' live, whole country invited "
            f"({since_launch():.1f} s after launch)"
        )
        self._start_sites(services, cast, meeting_id, chair)
        if services.command is not None:
            try:
                await file_samples(services.command, chair, self.prepared.sites)
            except Exception as exc:
                say(f"command center samples skipped: {exc!r}")
        print_welcome(
            base, self.settings.data_dir, self.password, cast.spare, isolated=self.args.isolated
        )
        state = self.settings.data_dir / "demo.json"
        write_state(state, base, meeting_id, cast.spare, cast.media, self.children.pids())
        self.tasks.append(asyncio.create_task(report_status(services, meeting_id, self._stopping)))

    def _media_seconds(self) -> float:
        return time.monotonic() - self.media_started_at if self.media_started_at else 0.0

    async def _chair(self, services: DemoServices) -> StaffPrincipal:
        chair = await authenticate_staff(services.db, "chair", self.password)
        if chair is None:
            raise RuntimeError("the demo chair account cannot log in")
        return chair

    @staticmethod
    async def _start_meeting(services: DemoServices, chair: StaffPrincipal) -> int:
        """Create and start the national meeting as the chair, inviting every site."""
        actor = meetings_actor(chair)
        view = await services.meetings.lifecycle.create_meeting(
            actor, title=MEETING_TITLE, agenda=AGENDA, invite=InviteSpec(everyone=True)
        )
        view = await services.meetings.lifecycle.start_meeting(actor, view.id)
        return int(view.id)

    def _start_sites(
        self, services: DemoServices, cast: Cast, meeting_id: int, chair: StaffPrincipal
    ) -> None:
        """The simulator, the chair's stand-in, the media child and the floor rotation."""
        if cast.simulated:
            self.children.spawn("sim", cast.simulated)
        grant_file: Path | None = None
        if services.media is not None:
            grant_file = self.settings.data_dir / "chair-grant.json"
            self.stand_in = ChairStandIn(
                services.media,
                meeting_id,
                grant_file,
                self._chair_claimed,
            )
            self.stand_in.start()
        if cast.media or grant_file is not None:
            self.children.spawn("media", cast.media, chair_grant=grant_file)
            every = self.args.floor_every
            floor = rotate_floor(services, chair, meeting_id, cast.media, every, self._stopping)
            self.tasks.append(asyncio.create_task(floor))

    def _chair_claimed(self) -> None:
        # The media child's chair bot leaves on SIGUSR1 (`diemcau.demo.child`).
        self.children.signal("media", signal.SIGUSR1)

    async def close(self) -> None:
        """Stop the loops and the children (idempotent).

        The loops finish the action in hand first (`diemcau.demo.pacing`); one stuck
        longer than `LOOP_GRACE_S` is cancelled.
        """
        self._stopping.set()
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=LOOP_GRACE_S)
        for task in self.tasks:
            await cancel_and_wait(task)
        self.tasks.clear()
        if self.stand_in is not None:
            await self.stand_in.close()
        await self.children.stop()


async def _serve(demo: Demo, request: StopRequest) -> None:
    """Serve until ``stop``; the sites and bots leave first, while the server answers."""
    from diemcau.api.server import serve

    server_stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    async def ready(runtime: Runtime) -> None:
        try:
            await demo.on_ready(runtime)
        except Exception as exc:
            say(f"demo setup failed: {exc!r}")
            request.stop.set()
            raise
        if demo.args.duration:
            loop.call_later(demo.args.duration, request.stop.set)

    async def shutdown() -> None:
        await request.stop.wait()
        say("stopping: simulated sites and bots, then the server and Janus")
        await demo.close()
        # Let the server record the departures (attendance, presence, alerts) first.
        if not await settle(hurry=request.hurry):
            say("stopping the server; it finishes recording departures as it stops")
        server_stop.set()

    watcher = asyncio.create_task(shutdown())
    try:
        await serve(demo.settings, on_ready=ready, stop=server_stop)
    finally:
        watcher.cancel()
        await demo.close()


async def _main(demo: Demo, janus: list[LocalCluster]) -> None:
    args = demo.args
    demo.prepared = await prepare(demo.settings, args.dataset, demo.password, sheets=args.sheets)
    request = StopRequest()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, request.request)
    demo.media_started_at = time.monotonic()
    relays = 0 if args.no_media else args.relays
    settings = demo.settings
    tls = ServerFiles(Path(settings.tls_cert), Path(settings.tls_key)) if settings.tls else None
    cluster = await start_local_janus(demo.prepared.sites, relays, settings.data_dir / "janus", tls)
    if cluster is not None:
        janus.append(cluster)
        os.environ.update(declare_nodes(cluster, demo.settings.data_dir / "media-nodes.json"))
    try:
        if not request.stop.is_set():
            await _serve(demo, request)
    finally:
        if cluster is not None:
            await cluster.stop()
    say("stopped")


def _with_tls(settings: Settings, args: argparse.Namespace) -> Settings:
    """HTTPS with the given certificate, or with a lab CA's (kept beside the data folder)."""
    if args.tls_cert or args.tls_key:
        return dataclasses.replace(settings, tls_cert=args.tls_cert, tls_key=args.tls_key)
    if args.no_tls:
        return settings
    from diemcau.tls.certs import demo_server_files

    files, ca, pin = demo_server_files(settings.data_dir.parent / "lab-ca", args.host)
    # The demo's own clients (simulated sites, bots) trust the lab CA.
    os.environ["SSL_CERT_FILE"] = str(ca)
    say(f"TLS: lab CA {ca}; Chromium: --ignore-certificate-errors-spki-list={pin}")
    return dataclasses.replace(settings, tls_cert=str(files.cert), tls_key=str(files.key))


def run(args: argparse.Namespace) -> int:
    """``diemcau demo``: the whole run, from a fresh data folder to a clean stop."""
    if args.isolated:
        from diemcau.media.isolation import enter_isolated_netns

        enter_isolated_netns()
        say(f"private network namespace: nsenter --net=/proc/{os.getpid()}/ns/net")
    data = Path(args.data)
    if data.exists() and not args.keep:
        shutil.rmtree(data)
    data.mkdir(parents=True, exist_ok=True)
    settings = _with_tls(Settings(data_dir=data, host=args.host, port=args.port), args)
    password = os.environ.get("DIEMCAU_DEMO_PASSWORD") or secrets.token_urlsafe(9)
    demo = Demo(args, settings, password)
    janus: list[LocalCluster] = []
    try:
        asyncio.run(_main(demo, janus))
    except KeyboardInterrupt:
        demo.children.kill()
        for cluster in janus:
            for proc in cluster.processes.values():
                proc.kill()
        say("stopped")
    return 0
