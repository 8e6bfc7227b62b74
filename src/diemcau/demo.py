"""``diemcau demo``: a live national meeting on one machine, in one command.

What it starts (DESIGN.md §3, "Embedded default"):

1. a fresh SQLite store with the directory loaded, a credential for every site
   (``--sheets`` also prints the provisioning sheets with QR codes, ~30 s for
   the whole country) and the staff accounts ``admin``, ``chair``, ``operator``;
2. the control server, then a local media plane (one central and ``--relays``
   relay Janus processes) attached to its runtime: if Janus cannot start, the
   demo says so and goes on with the control plane only;
3. a live meeting "Họp trực tuyến toàn quốc" inviting the whole country,
   started by the chair through the meetings service;
4. two child processes, so the server keeps a core of its own: the control-plane
   simulator (every other site: a session, heartbeats, link reports, a
   ``meeting.join``), and the media sites (``--media-sites``, spread over the
   relays: a session, a ``meeting.join`` and a real aiortc publisher on their
   relay, fetched through the same HTTP grants a browser uses) plus the chair's
   publisher on central;
5. floor rotation among the media sites every ``--floor-every`` seconds, through
   the meetings service (audit log, site terminals and media plane all see it),
   and a few situation reports and one directive for the dashboard.

Stops cleanly on Ctrl-C or after ``--duration``: children by PID, then the
server, whose runtime stops the Janus processes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import dataclasses
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diemcau.config import Settings
from diemcau.store import Database, migrate

__all__ = ["register", "prepare", "DemoSite", "MEETING_TITLE", "pick_media_sites"]

MEETING_TITLE = "Họp trực tuyến toàn quốc"
_T0 = time.monotonic()


def _say(msg: str) -> None:
    print(f"[demo {time.monotonic() - _T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class DemoSite:
    """A site of the demo with its join code (``code:secret``)."""

    site_id: int
    code: str
    name: str
    kind: str
    province: str
    join_code: str


@dataclass
class Prepared:
    """What `prepare` made: the sites with their join codes, and how long it took."""

    sites: list[DemoSite] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


async def _site_rows(db: Database) -> dict[str, tuple[int, str, str, str]]:
    """code -> (id, name, kind, province code) of every non-revoked site."""
    from sqlalchemy import select
    from sqlalchemy.orm import aliased

    from diemcau.store.models import Site, Unit

    province = aliased(Unit)
    async with db.session() as s:
        rows = (
            await s.execute(
                select(Site.code, Site.id, Site.name, Site.kind, province.code)
                .outerjoin(province, province.id == Site.province_id)
                .where(Site.revoked.is_(False))
                .order_by(Site.code)
            )
        ).all()
    return {code: (sid, name, kind, prov or "") for code, sid, name, kind, prov in rows}


async def prepare(
    settings: Settings, dataset: str, password: str, *, sheets: bool = False
) -> Prepared:
    """Fresh store with the directory, a credential for every site, and staff accounts.

    Without ``sheets`` the credentials are issued in one transaction (no QR
    codes), so the meeting is live seconds later; the join codes and links go to
    ``<data>/join-codes.csv``. With ``sheets`` the provisioning run prints the
    per-province CSV and HTML sheets (QR codes) under ``<data>/provision``.
    """
    from diemcau.accounts.service import create_staff, join_link, rotate_site
    from diemcau.directory import datasets, service
    from diemcau.sim.cli import provision_sim_codes
    from diemcau.sim.sites import read_join_codes

    started = time.perf_counter()
    url = settings.resolved_database_url()
    await migrate(url)
    db = Database(url)
    try:
        t0 = time.perf_counter()
        records = datasets.load_dataset(dataset)
        await service.load_units(db, records, dataset=dataset)
        stats = await service.stats(db)
        _say(f"directory {dataset}: {stats} in {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        if sheets:
            from diemcau.directory.provision import provision

            key = await db.secret_key(settings.secret_key)
            out = settings.data_dir / "provision"
            await provision(db, key, settings.resolved_public_url(), out)
            codes = read_join_codes(out)
            _say(f"provisioned sheets in {time.perf_counter() - t0:.1f} s -> {out}/index.html")
        else:
            codes = await provision_sim_codes(url, dataset, None)
            # The central hall's own site too, so the map shows every site online.
            key = await db.secret_key(settings.secret_key)
            for code, (_sid, _name, kind, _prov) in (await _site_rows(db)).items():
                if kind == "chair":
                    codes.append(await rotate_site(db, key, code))
            _say(f"issued {len(codes)} site credentials in {time.perf_counter() - t0:.1f} s")
        for username, role in (("admin", "admin"), ("chair", "chair"), ("operator", "operator")):
            await create_staff(db, username, password, role, display_name=username.title())
        rows = await _site_rows(db)
    finally:
        await db.dispose()
    sites: list[DemoSite] = []
    for jc in codes:
        code = jc.split(":", 1)[0]
        row = rows.get(code)
        if row is not None:
            sites.append(DemoSite(row[0], code, row[1], row[2], row[3], jc))
    base = settings.resolved_public_url()
    listing = settings.data_dir / "join-codes.csv"
    with listing.open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["site code", "site name", "kind", "province", "join link", "join code"])
        for site in sites:
            w.writerow(
                [
                    site.code,
                    site.name,
                    site.kind,
                    site.province,
                    join_link(base, site.join_code),
                    site.join_code,
                ]
            )
    return Prepared(sites, dict(stats), time.perf_counter() - started)


def pick_media_sites(
    candidates: list[DemoSite], assignment: dict[str, str], count: int
) -> list[DemoSite]:
    """Up to ``count`` sites spread round-robin over the relays they are planned on.

    One site per province first (so the program shows different places), then
    any; sites the plan did not place are skipped.
    """
    by_node: dict[str, list[DemoSite]] = {}
    seen: set[str] = set()
    for site in sorted(candidates, key=lambda s: (s.province, s.code)):
        node = assignment.get(site.code)
        if node is None or site.province in seen:
            continue
        seen.add(site.province)
        by_node.setdefault(node, []).append(site)
    queues = [by_node[n] for n in sorted(by_node)]
    picked: list[DemoSite] = []
    while len(picked) < count and any(queues):
        for q in queues:
            if q and len(picked) < count:
                picked.append(q.pop(0))
    return picked


# --- the server side ------------------------------------------------------------------------


class Demo:
    """The running demo inside the server process (see the module docstring)."""

    def __init__(self, args: argparse.Namespace, settings: Settings, password: str) -> None:
        self.args = args
        self.settings = settings
        self.password = password
        self.prepared = Prepared()
        self.children: list[subprocess.Popen[bytes]] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.media_sites: list[DemoSite] = []
        self.meeting_id: int | None = None
        self.chair: Any = None
        self.chair_actor: Any = None
        self.chair_grant: Path | None = None
        self.chair_bot = False
        self.media_child: subprocess.Popen[bytes] | None = None

    # -- media ---------------------------------------------------------------------------

    async def start_media(self, runtime: Any) -> bool:
        """Attach the local media plane to the running server; False (and why) if it fails."""
        from diemcau.media import runtime as media_runtime

        if self.args.no_media or self.args.relays <= 0:
            _say("media: off (--no-media); control plane only")
            return False
        if shutil.which("janus") is None:
            _say("media: no 'janus' binary on PATH (scripts/setup.sh installs it); control only")
            return False
        t0 = time.perf_counter()
        runtime.settings = dataclasses.replace(runtime.settings, media_relays=self.args.relays)
        try:
            await media_runtime.attach(runtime)
            await runtime.start()
        except Exception as exc:
            _say(f"media: the local media plane failed to start ({exc!r}); control plane only")
            runtime.services.pop("media", None)
            return False
        orch = runtime.services.get("media")
        if orch is None:
            _say("media: the plane did not attach; control plane only")
            return False
        await _until(lambda: all(n["up"] for n in orch.status()), 10.0)
        _say(f"media: {self.media_status(orch)} in {time.perf_counter() - t0:.1f} s")
        return True

    @staticmethod
    def media_status(orch: Any) -> str:
        parts = [
            f"{n['node']} ({n['role']}) {'up' if n['up'] else 'DOWN'}"
            + (f", {n['sites']} sites" if n["role"] == "relay" else "")
            for n in orch.status()
        ]
        return "nodes " + "; ".join(parts)

    def hand_over_chair(self, orch: Any) -> None:
        """Run a chair bot on central until a person opens the chair console.

        The program's chair feed has one publisher id, so a bot and a browser
        cannot both hold it. The bot gets its grant from a file this process
        keeps fresh; every call of ``chair_media_grant`` after that comes from a
        console (GET /api/media/chair), and the first one tells the bot to leave
        (SIGUSR1 to the media child). The console retries its publish until the
        bot is gone (a few seconds).
        """
        assert self.meeting_id is not None
        original = orch.chair_media_grant
        self.chair_grant = self.settings.data_dir / "chair-grant.json"

        def write_grant() -> None:
            grant = original(self.meeting_id)
            assert self.chair_grant is not None
            tmp = self.chair_grant.with_suffix(".tmp")
            tmp.write_text(json.dumps(grant), encoding="utf-8")
            os.replace(tmp, self.chair_grant)

        def console_grant(meeting_id: Any = None) -> Any:
            if self.chair_bot:
                self.chair_bot = False
                _say("chair console opened: the chair bot hands the chair feed over")
                proc = self.media_child
                if proc is not None and proc.poll() is None:
                    proc.send_signal(signal.SIGUSR1)
            return original(meeting_id)

        async def refresh() -> None:
            # Room tokens live `token_ttl` (10 min); a republish needs a fresh one.
            while self.chair_bot:
                await asyncio.sleep(120)
                write_grant()

        write_grant()
        self.chair_bot = True
        orch.chair_media_grant = console_grant
        self.tasks.append(asyncio.create_task(refresh()))

    # -- meeting -------------------------------------------------------------------------

    async def start_meeting(self, runtime: Any) -> int:
        from diemcau.accounts.service import authenticate_staff
        from diemcau.actors import Actor
        from diemcau.meetings.invites import InviteSpec

        meetings = runtime.services["meetings"]
        chair = await authenticate_staff(runtime.db, "chair", self.password)
        if chair is None:
            raise RuntimeError("the demo chair account cannot log in")
        self.chair = chair
        self.chair_actor = Actor.for_staff(chair.username, chair.role, user_id=chair.user_id)
        view = await meetings.lifecycle.create_meeting(
            self.chair_actor,
            title=MEETING_TITLE,
            agenda="Giới thiệu hệ thống điểm cầu; báo cáo tình hình các địa phương; kết luận.",
            invite=InviteSpec(everyone=True),
        )
        view = await meetings.lifecycle.start_meeting(self.chair_actor, view.id)
        return int(view.id)

    async def rotate_floor(self, runtime: Any) -> None:
        """Give the floor to the next present media site every ``--floor-every`` seconds."""
        meetings = runtime.services["meetings"]
        assert self.meeting_id is not None
        turn = 0
        while True:
            await asyncio.sleep(self.args.floor_every)
            present = [
                s
                for s in self.media_sites
                if meetings.attendance.is_present(self.meeting_id, s.site_id)
            ]
            if not present:
                continue
            site = present[turn % len(present)]
            turn += 1
            try:
                decision = await meetings.floor.grant(
                    self.chair_actor, self.meeting_id, [site.site_id]
                )
            except Exception as exc:
                _say(f"floor: grant to {site.code} refused: {exc}")
                continue
            media = runtime.services.get("media")
            node = media.plan.assignment.get(site.code, "?") if media is not None else "-"
            _say(f"floor -> {site.name} ({site.code}, {node}), version {decision.version}")

    async def command_samples(self, runtime: Any) -> None:
        """A few situation reports and one directive, so the dashboard has content."""
        command = runtime.services.get("command")
        if command is None:
            return
        try:
            await _command_samples(command, self.chair, self.prepared.sites)
        except Exception as exc:
            _say(f"command center samples skipped: {exc!r}")

    # -- children ------------------------------------------------------------------------

    def spawn(self, role: str, sites: list[DemoSite]) -> None:
        data = self.settings.data_dir
        codes = data / f"{role}-sites.json"
        listing = [{"join_code": s.join_code, "label": s.name} for s in sites]
        codes.write_text(json.dumps(listing, ensure_ascii=False), encoding="utf-8")
        log = (data / f"{role}.log").open("ab")
        cmd = [
            sys.executable,
            "-m",
            "diemcau.demo",
            role,
            "--url",
            self.settings.resolved_public_url(),
            "--codes",
            str(codes),
        ]
        if role == "media" and self.chair_grant is not None:
            cmd += ["--chair-grant", str(self.chair_grant)]
        env = dict(os.environ, DIEMCAU_DEMO_PASSWORD=self.password)
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env
        )
        log.close()
        self.children.append(proc)
        if role == "media":
            self.media_child = proc
        _say(f"{role}: {len(sites)} sites in process {proc.pid} (log {data / (role + '.log')})")

    async def stop_children(self, timeout: float = 10.0) -> None:
        """SIGTERM each child (by PID), wait for it without blocking the server, then kill."""
        for proc in self.children:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.children:
            while proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            _say(f"process {proc.pid} ended ({proc.returncode})")
        self.children.clear()

    def kill_children(self) -> None:
        """Last resort when the event loop is gone: kill what is left (by PID)."""
        for proc in self.children:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.children.clear()

    # -- the whole thing -----------------------------------------------------------------

    async def on_ready(self, runtime: Any) -> None:
        base = self.settings.resolved_public_url()
        _say(f"control server up at {base}/")
        media = await self.start_media(runtime)
        candidates = [s for s in self.prepared.sites if s.kind != "chair"]
        if media:
            orch = runtime.services["media"]
            self.media_sites = pick_media_sites(
                candidates, dict(orch.plan.assignment), self.args.media_sites
            )
            relays = sorted({orch.plan.assignment[s.code] for s in self.media_sites})
            _say(f"media sites: {len(self.media_sites)} on {', '.join(relays)}")
        chosen = {s.code for s in self.media_sites}
        # One invited site is left to the person running the demo (its join link is
        # printed): a browser and a simulated session would take turns on it.
        spare = next((s for s in candidates if s.code not in chosen), None)
        if spare is not None:
            chosen.add(spare.code)
        # Every other site, the chair's hall included (online, though not invited).
        sim_sites = [s for s in self.prepared.sites if s.code not in chosen]
        if self.args.sim_sites >= 0:
            sim_sites = sim_sites[: self.args.sim_sites]
        self.meeting_id = await self.start_meeting(runtime)
        _say(
            f"meeting {self.meeting_id} '{MEETING_TITLE}' live, whole country invited "
            f"({time.monotonic() - _T0:.1f} s after launch)"
        )
        if sim_sites:
            self.spawn("sim", sim_sites)
        if media:
            self.hand_over_chair(runtime.services["media"])
        if self.media_sites or self.chair_grant is not None:
            self.spawn("media", self.media_sites)
            self.tasks.append(asyncio.create_task(self.rotate_floor(runtime)))
        await self.command_samples(runtime)
        print(f"\ndiemcau demo is running: {base}/", flush=True)
        print(f"  dashboard:  {base}/dashboard", flush=True)
        print(f"  chair:      {base}/chair", flush=True)
        if spare is not None:
            from diemcau.accounts.service import join_link

            print(f"  site:       {join_link(base, spare.join_code)}", flush=True)
            print(f"              ({spare.name}, left for you: not simulated)", flush=True)
        print(f"  join links: {self.settings.data_dir / 'join-codes.csv'}", flush=True)
        self.write_state(base, spare)
        print(f"  staff login: chair / {self.password}  (also admin, operator)", flush=True)
        if self.args.isolated:
            ns = f"nsenter --net=/proc/{os.getpid()}/ns/net"
            print(f"  inside the namespace: {ns}", flush=True)
            print(
                f"  open a page there:    {ns} chromium --no-sandbox "
                f"--user-data-dir=$(mktemp -d) {base}/chair",
                flush=True,
            )
        self.tasks.append(asyncio.create_task(self.report(runtime)))

    def write_state(self, base: str, spare: DemoSite | None) -> None:
        """``<data>/demo.json``: what runs where, for scripts and tests driving the demo."""
        from diemcau.accounts.service import join_link

        state = {
            "url": base,
            "pid": os.getpid(),
            "meeting_id": self.meeting_id,
            "spare_site": None
            if spare is None
            else {
                "code": spare.code,
                "name": spare.name,
                "join_link": join_link(base, spare.join_code),
            },
            "media_sites": [{"code": s.code, "name": s.name} for s in self.media_sites],
            "children": {
                ("media" if p is self.media_child else "sim"): p.pid for p in self.children
            },
        }
        path = self.settings.data_dir / "demo.json"
        path.write_text(json.dumps(state, ensure_ascii=False, indent=1), encoding="utf-8")

    async def report(self, runtime: Any) -> None:
        """A status line every 10 s: who is online, present, speaking; the media nodes."""
        meetings = runtime.services["meetings"]
        while True:
            await asyncio.sleep(10)
            try:
                assert self.meeting_id is not None
                summary = await meetings.roll_call.summary(self.meeting_id)
                total = summary.as_dict().get("total", {})
                floor = await meetings.floor.state(self.meeting_id)
                speakers = ", ".join(s.code for s in floor.speakers) or "-"
                line = (
                    f"status: present {total.get('present')}/{total.get('invited')}, "
                    f"floor {speakers}"
                )
                media = runtime.services.get("media")
                if media is not None:
                    line += f"; media {self.media_status(media)}"
                _say(line)
            except Exception as exc:
                _say(f"status unavailable: {exc!r}")

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.tasks.clear()
        await self.stop_children()


async def _command_samples(command: Any, chair: Any, sites: list[DemoSite]) -> None:
    """File a few situation reports (disaster schema) and issue one directive."""
    import random

    from diemcau.command.actors import Actor
    from diemcau.command.directives import DirectiveIn
    from diemcau.command.targets import Target

    rng = random.Random(2025)  # noqa: S311 - sample figures, not security
    filed = 0
    for site in [s for s in sites if s.kind != "chair"][:: max(1, len(sites) // 8)][:8]:
        values = {
            "people_evacuated": rng.randint(0, 400),
            "houses_damaged": rng.randint(0, 60),
            "deaths": 0,
            "urgent_needs": "Nước sạch, áo phao",
        }
        await command.reports.submit(Actor.for_site(site.site_id, site.code), "disaster", values)
        filed += 1
    staff = Actor.for_staff(chair.username, chair.role, user_id=chair.user_id)
    await command.directives.issue_directive(
        staff,
        DirectiveIn(
            title="Báo cáo tình hình mưa lũ trước 17 giờ",
            body="Các điểm cầu báo cáo số hộ sơ tán, nhà hư hỏng và nhu cầu cấp bách.",
            priority="high",
            target=Target(country=True),
        ),
    )
    _say(f"command center: {filed} situation reports filed, one directive to every site")


async def _until(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def _run(args: argparse.Namespace) -> int:
    if args.isolated:
        from diemcau.media.isolation import enter_isolated_netns

        enter_isolated_netns()
        _say(f"private network namespace: nsenter --net=/proc/{os.getpid()}/ns/net")
    data = Path(args.data)
    if data.exists() and not args.keep:
        shutil.rmtree(data)
    data.mkdir(parents=True, exist_ok=True)
    settings = Settings(data_dir=data, host=args.host, port=args.port)
    if args.tls_cert or args.tls_key:
        settings = dataclasses.replace(settings, tls_cert=args.tls_cert, tls_key=args.tls_key)
    elif not args.no_tls:
        from diemcau.tls.certs import demo_server_files

        files, ca, pin = demo_server_files(data.parent / "lab-ca", args.host)
        settings = dataclasses.replace(settings, tls_cert=str(files.cert), tls_key=str(files.key))
        # The demo's own clients (simulated sites, bots) trust the lab CA.
        os.environ["SSL_CERT_FILE"] = str(ca)
        _say(f"TLS: lab CA {ca}; Chromium: --ignore-certificate-errors-spki-list={pin}")
    password = os.environ.get("DIEMCAU_DEMO_PASSWORD") or secrets.token_urlsafe(9)
    demo = Demo(args, settings, password)

    async def main() -> None:
        from diemcau.api.server import serve

        demo.prepared = await prepare(settings, args.dataset, password, sheets=args.sheets)
        stop = asyncio.Event()
        server_stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)

        async def ready(runtime: Any) -> None:
            try:
                await demo.on_ready(runtime)
            except Exception as exc:
                _say(f"demo setup failed: {exc!r}")
                stop.set()
                raise
            if args.duration:
                loop.call_later(args.duration, stop.set)

        async def shutdown() -> None:
            # The sites and bots leave first, while the server still answers them.
            await stop.wait()
            _say("stopping: simulated sites and bots, then the server and Janus")
            await demo.close()
            # Let the server store the departures (attendance, presence) first.
            await asyncio.sleep(1.0)
            server_stop.set()

        watcher = asyncio.create_task(shutdown())
        try:
            await serve(settings, on_ready=ready, stop=server_stop)
        finally:
            watcher.cancel()
            await demo.close()
        _say("stopped")

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        demo.kill_children()
        _say("stopped")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="run a live national meeting on this machine",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--dataset", default="vn-2025", choices=["vn-2025", "vn-legacy", "south-19"])
    p.add_argument("--data", default="var/demo", help="data directory (recreated unless --keep)")
    p.add_argument("--keep", action="store_true", help="keep an existing demo data directory")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--relays", type=int, default=3, help="local relay Janus processes")
    p.add_argument("--no-media", action="store_true", help="control plane only (no Janus)")
    p.add_argument(
        "--no-tls",
        action="store_true",
        help="plain http:// and ws:// (loopback only; default: HTTPS with a lab CA)",
    )
    p.add_argument("--tls-cert", default="", help="use this certificate instead of a lab CA's")
    p.add_argument("--tls-key", default="", help="its key")
    p.add_argument(
        "--media-sites", type=int, default=12, help="sites with real synthetic media (aiortc)"
    )
    p.add_argument(
        "--sim-sites", type=int, default=-1, help="limit the control-plane simulated sites"
    )
    p.add_argument("--floor-every", type=float, default=20.0, help="floor rotation, seconds")
    p.add_argument(
        "--sheets", action="store_true", help="print provisioning sheets with QR codes (~30 s)"
    )
    p.add_argument(
        "--isolated",
        action="store_true",
        help="run inside a private network namespace on loopback addresses (needs root)",
    )
    p.add_argument("--duration", type=float, default=0, help="stop after this many seconds")
    p.set_defaults(func=_run)


# --- the child processes --------------------------------------------------------------------


def _swarm_class() -> Any:
    from diemcau.sim.sites import SimSite, Swarm

    join = json.dumps({"type": "req", "id": "join", "kind": "meeting.join", "body": {}})

    class MeetingSwarm(Swarm):  # type: ignore[misc]
        """Simulated sites that join their live meeting on every (re)connect and start."""

        async def _connect(self, site: SimSite) -> bool:
            ok: bool = await super()._connect(site)
            if ok:
                self._write(site, json.loads(join))
            return ok

    return MeetingSwarm


def _on_message(site: Any, msg: dict[str, Any]) -> None:
    if msg.get("kind") == "meeting.started" and site.ws is not None:
        from websockets.asyncio.connection import broadcast

        broadcast([site.ws], json.dumps({"type": "req", "kind": "meeting.join", "body": {}}))


async def _http_json(
    client: Any, method: str, path: str, token: str | None = None, **kw: Any
) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    resp = await client.request(method, path, headers=headers, **kw)
    resp.raise_for_status()
    return resp.json()


async def _keep_publishing(
    label: str, fetch: Callable[[], Awaitable[dict[str, Any]]], stop: asyncio.Event
) -> None:
    """Publish as a site (or the chair) and republish when the PC fails or the relay moves."""
    from diemcau.sim.media_bot import JanusTarget, PublisherBot

    bot: PublisherBot | None = None
    node = ""
    while not stop.is_set():
        try:
            if bot is None or bot.pc.connectionState in ("failed", "closed"):
                if bot is not None:
                    await bot.stop()
                    bot = None
                grant = await fetch()
                node = str(grant.get("node", ""))
                target = JanusTarget(
                    grant["ws_url"], grant["publish"]["room"], grant["token"], grant["room_token"]
                )
                bot = PublisherBot(target, int(grant["publish"]["feed_id"]), label)
                await bot.start()
                print(f"[media] {label} publishing on {node}", file=sys.stderr, flush=True)
        except Exception as exc:
            print(f"[media] {label}: {exc!r}; retrying", file=sys.stderr, flush=True)
            if bot is not None:
                await bot.stop()
                bot = None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 2.0)
    if bot is not None:
        await bot.stop()
    print(f"[media] {label} left", file=sys.stderr, flush=True)


async def _until_event(source: asyncio.Event, target: asyncio.Event) -> None:
    await source.wait()
    target.set()


async def _child(role: str, url: str, codes_path: Path, chair_grant: Path | None) -> None:
    import httpx

    from diemcau.sim.cli import resolve_site_url
    from diemcau.sim.sites import SimOptions

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
    options = SimOptions(summary_s=10.0 if role == "sim" else 0.0, join_rate=500.0)
    swarm = _swarm_class()(site_url, codes, options, on_message=_on_message)
    runs: list[asyncio.Task[None]] = [asyncio.create_task(swarm.run(stop=stop))]
    client: httpx.AsyncClient | None = None
    if role == "media":
        client = httpx.AsyncClient(base_url=url, timeout=10.0)

        def site_fetch(jc: str) -> Callable[[], Awaitable[dict[str, Any]]]:
            async def fetch() -> dict[str, Any]:
                login = await _http_json(
                    client, "POST", "/api/auth/site-login", json={"join_code": jc}
                )
                grant: dict[str, Any] = await _http_json(
                    client, "GET", "/api/site/media", login["token"]
                )
                return grant

            return fetch

        async def chair_fetch() -> dict[str, Any]:
            # Written by the server side: /api/media/chair is left to a person's
            # console, whose first call makes this bot hand the chair feed over.
            assert chair_grant is not None
            grant: dict[str, Any] = json.loads(chair_grant.read_text(encoding="utf-8"))
            return grant

        runs.append(asyncio.create_task(_until_event(stop, chair_stop)))
        if chair_grant is not None:
            runs.append(asyncio.create_task(_keep_publishing("CHU TRI", chair_fetch, chair_stop)))
        for jc, label in zip(codes, labels, strict=True):
            runs.append(asyncio.create_task(_keep_publishing(label, site_fetch(jc), stop)))
    await stop.wait()
    await asyncio.gather(*runs, return_exceptions=True)
    if client is not None:
        await client.aclose()


def _child_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m diemcau.demo")
    p.add_argument("role", choices=["sim", "media"])
    p.add_argument("--url", required=True)
    p.add_argument("--codes", required=True)
    p.add_argument("--chair-grant", default=None, help="JSON file with the chair's media grant")
    a = p.parse_args(argv)
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
    grant = Path(a.chair_grant) if a.chair_grant else None
    asyncio.run(_child(a.role, a.url, Path(a.codes), grant))
    # Done: a late SIGTERM from the parent (Ctrl-C reached both) must not turn a
    # clean exit into a kill.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
