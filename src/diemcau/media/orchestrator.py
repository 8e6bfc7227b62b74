"""The media orchestrator: the one object the meetings layer drives.

Room layout (same ids on every node, derived from names so a restarted
control plane finds its rooms again):

- program room of a meeting, on central and on every relay: remote
  publishers only (created with an empty ``allowed`` list, so no browser
  can publish into it). It holds the chair and the floor speakers; sites
  subscribe to it on their relay, the chair console on central.
- chair room of a meeting, on central: the chair console publishes there;
  that feed is remotized to central's and every relay's program room.
- inspect room of a meeting, on central, only while a spot-check of that
  meeting is recorded (its recording policy says so): the inspected site's
  feed as a remote publisher, so the central node can record it
  (docs/recording.md); nobody subscribes to it.
- uplink room of a site, on the site's relay: the site publishes its camera
  and microphone there and only there. The chair console subscribes to it
  for a spot-check; a floor grant remotizes that feed once to central's
  program room (and into its own relay's), and central forwards it on to
  every other relay's program room (1.1.2 refuses to remotize a remote
  publisher but forwards one: `cascade.RemoteLink.via`), so the speaker's
  relay sends one copy whatever the number of relays.

Browsers get signed tokens (`rights`): the core token opens sessions on one
node and the VideoRoom only, and names its holder; the room token names the
rooms a holder may join. A site's room token names its own relay's program
room and its own uplink room, so it cannot join another relay's rooms (another
node's secret) or another site's feed (another room). Publishing needs more: a
room's ``allowed`` list holds the publish token of its one publisher (the site
in its uplink room, the chair console in the chair room, nobody in a program
room), and program rooms ask every viewer for a pin, changed when a site of
that relay loses its credential (`update_credential`, docs/media.md "Who may
publish and watch").
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from diemcau.limits import MAX_SPEAKERS
from diemcau.media.cascade import Cascade, RemoteLink, SyncReport
from diemcau.media.control import NodeControl
from diemcau.media.grants import GrantSigner
from diemcau.media.janus import JanusError
from diemcau.media.looks import LOOK_SECONDS, Looks
from diemcau.media.node import JanusNode, NodeRegistry
from diemcau.media.revoke import SweepReport, end_sessions, sweep_outdated
from diemcau.media.rights import Holder, new_pin
from diemcau.media.rooms import RoomSpec, is_stale, make_room
from diemcau.media.topology import Move, Plan, SiteRef, plan_sites, reassign
from diemcau.media.turn import TurnServer
from diemcau.tasks import cancel_and_wait

__all__ = ["MediaOrchestrator", "MediaError", "feed_id", "room_id"]

log = logging.getLogger(__name__)

FloorFanout = Literal["central", "source"]


def _id48(text: str) -> int:
    # 48 bits: unique enough, and exact in JavaScript numbers.
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:6], "big") or 1


def room_id(kind: str, key: str) -> int:
    """The VideoRoom id of ``program``/``uplink`` room ``key``."""
    return _id48(f"room:{kind}:{key}")


def feed_id(kind: str, key: str) -> int:
    """The publisher id of the ``chair`` of a meeting or of a ``site``."""
    return _id48(f"feed:{kind}:{key}")


MoveListener = Callable[[list[Move]], Awaitable[None] | None]


class MediaError(Exception):
    """A media request the orchestrator cannot serve (unknown site, no relay...)."""


@dataclass
class _Meeting:
    meeting_id: str
    room: int
    chair_room: int
    chair_feed: int
    floor: list[str] = field(default_factory=list)
    # The site whose spot-check is being recorded at central, if any.
    inspect: str | None = None

    @property
    def inspect_room(self) -> int:
        return room_id("inspect", self.meeting_id)

    @classmethod
    def new(cls, meeting_id: str, floor: list[str] | None = None) -> _Meeting:
        return cls(
            meeting_id,
            room_id("program", meeting_id),
            room_id("chair", meeting_id),
            feed_id("chair", meeting_id),
            list(floor or []),
        )


class MediaOrchestrator:
    """Owns the nodes' rooms and remote publishers; hands out media grants.

    Args:
        nodes: every node (exactly one with role ``central``).
        sites: every site that may join, with its province.
        token_ttl: lifetime of room tokens (checked when a browser joins a
            room), seconds.
        session_ttl: lifetime of core tokens. Janus checks the core token on
            every request, keepalives included, and a session whose keepalives
            fail dies 60 s later, so it must outlast the meeting; it only
            opens sessions and the VideoRoom on one node (rooms need a room token).
        sync_interval: how often links are verified and late feeds picked up.
        registry: a registry to use (one is created and run otherwise).
        turn: TURN servers; every grant then carries ``ice_servers`` with
            credentials that expire with the grant's core token.
        floor_fanout: ``central`` (the default): a floor speaker's feed leaves
            its relay once, to central, which forwards it to the other relays;
            ``source``: the speaker's relay sends one copy per relay itself
            (the earlier layout, kept for comparison in bench/media.py).
    """

    def __init__(
        self,
        nodes: Iterable[JanusNode],
        sites: Iterable[SiteRef],
        *,
        token_ttl: int = 600,
        session_ttl: int = 12 * 3600,
        sync_interval: float = 0.5,
        registry: NodeRegistry | None = None,
        turn: Sequence[TurnServer] = (),
        floor_fanout: FloorFanout = "central",
    ) -> None:
        if floor_fanout not in ("central", "source"):
            raise MediaError(f"unknown floor fan-out {floor_fanout!r}")
        self.floor_fanout: FloorFanout = floor_fanout
        self.turn = tuple(turn)
        self.registry = registry or NodeRegistry()
        self._own_registry = registry is None
        for n in nodes:
            self.registry.add(n)
        centrals = self.registry.nodes("central")
        if len(centrals) != 1:
            raise MediaError("exactly one central node is required")
        self.central = centrals[0]
        self.sites: dict[str, SiteRef] = {s.code: s for s in sites}
        self.token_ttl = token_ttl
        self.session_ttl = session_ttl
        self._grants = GrantSigner(token_ttl, session_ttl, self.turn)
        self._controls: dict[str, NodeControl] = {}
        self.cascade = Cascade(
            self.control,
            lambda n: self.registry.get(n).rtp_host,
            lambda n: self.registry.get(n).rtp_iface or self.registry.get(n).rtp_host,
        )
        self.looks = Looks(self.control)
        self._spot_checked: dict[str, float] = {}  # site -> until (monotonic)
        self.meetings: dict[str, _Meeting] = {}
        self.plan = Plan()
        self._rooms: dict[str, set[int]] = {}
        self._granted: set[str] = set()
        # Nodes each site was given a grant on: where its rights are taken back.
        self._site_nodes: dict[str, set[str]] = {}
        self._lock = asyncio.Lock()
        self._sync_interval = sync_interval
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self.last_report = SyncReport()
        self._move_listeners: list[MoveListener] = []
        self._chair_loans: dict[str, Callable[[], None]] = {}
        # Nodes whose control connection found them restarted (empty), to rebuild.
        self._restarted: set[str] = set()
        self._started = False
        self.registry.on_change(self._on_change)

    # -- lifecycle -------------------------------------------------------

    def control(self, node: str) -> NodeControl:
        ctl = self._controls.get(node)
        if ctl is None or ctl.node is not self.registry.get(node):
            ctl = NodeControl(self.registry.get(node), on_restart=self._restarted.add)
            self._controls[node] = ctl
        return ctl

    async def start(self) -> None:
        """Check every node once, plan the sites, start health checks and sync."""
        await self.registry.check_all()
        self.plan = plan_sites(self.sites.values(), self.registry.healthy("relay"))
        self._started = True
        if self._own_registry:
            self.registry.start()
        self._task = asyncio.create_task(self._sync_loop(), name="media-sync")

    async def close(self) -> None:
        """Stop background work; leaves rooms and links on the nodes (see `reconcile`)."""
        self._closing = True
        await cancel_and_wait(self._task)
        if self._own_registry:
            await self.registry.stop()
        for ctl in self._controls.values():
            await ctl.close()

    async def _sync_loop(self) -> None:
        while not self._closing:
            await asyncio.sleep(self._sync_interval)
            try:
                await self.sync()
            except Exception:
                log.exception("media sync failed")

    # -- desired state ---------------------------------------------------

    def _up(self, node: str) -> bool:
        return self.registry.is_up(node)

    def site_node(self, site_code: str) -> JanusNode:
        """The relay serving ``site_code`` now."""
        if site_code not in self.sites:
            raise MediaError(f"unknown site {site_code!r}")
        name = self.plan.assignment.get(site_code)
        if name is None:
            raise MediaError(f"no relay can take site {site_code!r}")
        return self.registry.get(name)

    def add_sites(self, sites: Iterable[SiteRef]) -> list[Move]:
        """Learn new sites (or a site's new province) and place them; nobody else moves."""
        for site in sites:
            self.sites[site.code] = site
        self.plan, moves = reassign(self.plan, self.sites.values(), self.registry.healthy("relay"))
        return moves

    def _uplink_spec(self, site: str) -> RoomSpec:
        ref = self.sites.get(site)
        return RoomSpec("uplink", site, ref.credential if ref is not None else None)

    def desired_rooms(self) -> dict[str, dict[int, RoomSpec]]:
        """Per healthy node: room id → what the room is for."""
        out: dict[str, dict[int, RoomSpec]] = {n.name: {} for n in self.registry.healthy()}
        for m in self.meetings.values():
            for rooms in out.values():
                rooms[m.room] = RoomSpec("program", m.meeting_id)
            if self.central.name in out:
                out[self.central.name][m.chair_room] = RoomSpec("chair", m.meeting_id)
                if m.inspect is not None:
                    out[self.central.name][m.inspect_room] = RoomSpec("inspect", m.meeting_id)
        sites = set(self._granted)
        for m in self.meetings.values():
            sites.update(m.floor)
            if m.inspect is not None:
                sites.add(m.inspect)
        for site in sites:
            node = self.plan.assignment.get(site)
            if node in out:
                out[node][room_id("uplink", site)] = self._uplink_spec(site)
        return out

    def desired_links(self) -> set[RemoteLink]:
        """Chair and each floor speaker → the program room on central and every relay.

        A speaker's feed goes from its uplink room to central's program room and
        its own relay's; with ``floor_fanout="central"`` central forwards it on
        to every other relay, otherwise the speaker's relay sends each copy.
        """
        relays = [n.name for n in self.registry.healthy("relay")]
        central = self.central.name
        if not self._up(central):
            return set()
        links: set[RemoteLink] = set()
        for m in self.meetings.values():
            for target in [central, *relays]:
                links.add(RemoteLink(central, m.chair_room, m.chair_feed, target, m.room, "chair"))
            for site in m.floor:
                node = self.plan.assignment.get(site)
                if node is None or not self._up(node):
                    continue
                uplink, feed = room_id("uplink", site), feed_id("site", site)
                for target in [central, *relays]:
                    if self.floor_fanout == "central" and target not in (central, node):
                        links.add(
                            RemoteLink(central, m.room, feed, target, m.room, site, "forward")
                        )
                    else:
                        links.add(RemoteLink(node, uplink, feed, target, m.room, site))
            node = self.plan.assignment.get(m.inspect or "")
            if m.inspect is not None and node is not None and self._up(node):
                links.add(
                    RemoteLink(
                        node,
                        room_id("uplink", m.inspect),
                        feed_id("site", m.inspect),
                        self.central.name,
                        m.inspect_room,
                        m.inspect,
                    )
                )
        return links

    def desired_looks(self) -> dict[str, tuple[str, int]]:
        """Site → (relay, uplink room) of every site watched at full quality now.

        Floor speakers (carried to every relay), a site whose spot-check is
        recorded (its feed in the inspect room) and sites spot-checked in the
        last `LOOK_SECONDS`; their browsers send the high simulcast layer.
        """
        now = time.monotonic()
        for site in [s for s, until in self._spot_checked.items() if until <= now]:
            del self._spot_checked[site]
        out: dict[str, tuple[str, int]] = {}
        watched = {s for m in self.meetings.values() for s in m.floor}
        watched |= {m.inspect for m in self.meetings.values() if m.inspect is not None}
        for site in watched | set(self._spot_checked):
            node = self.plan.assignment.get(site)
            if node is not None and self._up(node):
                out[site] = (node, room_id("uplink", site))
        return out

    async def _ensure_rooms(self) -> None:
        for node, rooms in self.desired_rooms().items():
            have = self._rooms.setdefault(node, set())
            for room, spec in rooms.items():
                if room not in have:
                    await make_room(self.control(node), room, spec)
                    have.add(room)

    async def _ensure_uplink(self, node: str, site: str) -> int:
        """The site's uplink room on ``node`` (made once; callers hold the lock)."""
        room = room_id("uplink", site)
        if room not in self._rooms.setdefault(node, set()):
            await make_room(self.control(node), room, self._uplink_spec(site))
            self._rooms[node].add(room)
        return room

    async def _ensure_program(self, node: str, m: _Meeting) -> str | None:
        """The meeting's program room on ``node`` made now if the sync loop has not yet;
        returns its pin (callers hold the lock)."""
        if m.room not in self._rooms.setdefault(node, set()):
            await make_room(self.control(node), m.room, RoomSpec("program", m.meeting_id))
            self._rooms[node].add(m.room)
        return self.control(node).pins.get(m.room)

    async def sync(self) -> SyncReport:
        """One pass: restarted nodes rebuilt, rooms exist, links and looks match the
        desired state."""
        for _ in range(2):
            await self._check_restarts()
            async with self._lock:
                await self._ensure_rooms()
                self.last_report = await self.cascade.apply(self.desired_links())
                self.last_report.errors += await self.looks.apply(self.desired_looks())
            if not self._restarted:
                break
            # Found during this pass (a request reconnected): rebuild at once.
        return self.last_report

    async def _check_restarts(self) -> None:
        """Reconnect dropped control connections (a restart is found by the sentinel room), then
        rebuild every node found restarted."""
        for node in self.registry.healthy():
            ctl = self._controls.get(node.name)
            if ctl is not None and ctl.connection_lost:
                try:
                    await asyncio.wait_for(ctl.check(), 2.0)
                except (OSError, JanusError, TimeoutError) as exc:
                    log.info("node %s not reachable yet: %s", node.name, exc)
        while self._restarted:
            name = self._restarted.pop()
            found = next((n for n in self.registry.nodes() if n.name == name), None)
            if found is not None:
                await self.on_node_restarted(found)

    # -- meetings API ----------------------------------------------------

    def _meeting(self, meeting_id: str | int | None) -> _Meeting:
        if meeting_id is None:
            if len(self.meetings) != 1:
                raise MediaError("no single running program; name the meeting")
            return next(iter(self.meetings.values()))
        m = self.meetings.get(str(meeting_id))
        if m is None:
            raise MediaError(f"no program for meeting {meeting_id!r}")
        return m

    async def start_program(self, meeting_id: str | int) -> dict[str, Any]:
        """Create the meeting's program rooms on every node; returns the chair's grant.

        The chair feed is carried to the relays as soon as the chair publishes.
        """
        key = str(meeting_id)
        if key not in self.meetings:
            self.meetings[key] = _Meeting.new(key)
        await self.sync()
        return self._chair_grant(self.meetings[key], "control")

    def restore_program(self, meeting_id: str | int, floor: list[str] | None = None) -> None:
        """Re-declare a running program after a control restart, touching no node.

        Call for every running meeting, then `reconcile` once.
        """
        key = str(meeting_id)
        self.meetings[key] = _Meeting.new(key, floor)

    async def set_floor(self, meeting_id: str | int, site_codes: list[str]) -> dict[str, Any]:
        """Give the floor to 0, 1 or 2 sites (replacing the previous speakers).

        Returns the program feeds sites should subscribe to now.
        """
        m = self._meeting(meeting_id)
        codes = list(dict.fromkeys(site_codes))
        if len(codes) > MAX_SPEAKERS:
            raise MediaError(f"at most {MAX_SPEAKERS} sites may hold the floor")
        for code in codes:
            self.site_node(code)
        m.floor = codes
        await self.sync()
        return {"meeting_id": m.meeting_id, "feeds": self.program_feeds(m.meeting_id)}

    async def set_inspection(self, meeting_id: str | int, site_code: str | None) -> None:
        """Carry one site's own feed into the meeting's inspect room on central (None: stop).

        Only for recording a spot-check at central (docs/recording.md); the chair
        console watches a spot-check on the site's relay (`spot_check_grant`).
        """
        m = self._meeting(meeting_id)
        if site_code is not None:
            self.site_node(site_code)
        m.inspect = site_code
        await self.sync()

    async def stop_program(self, meeting_id: str | int) -> None:
        """Remove the meeting's links and destroy its program rooms everywhere."""
        m = self.meetings.pop(str(meeting_id), None)
        self._chair_loans.pop(str(meeting_id), None)
        if m is None:
            return
        await self.sync()
        for node in self.registry.healthy():
            for room in (m.room, m.chair_room, m.inspect_room):
                with contextlib.suppress(OSError, JanusError):
                    await self.control(node.name).destroy_room(room)
                self._rooms.get(node.name, set()).discard(room)

    def program_feeds(self, meeting_id: str | int | None = None) -> list[dict[str, Any]]:
        """The feeds of the program: the chair, then the floor speakers."""
        m = self._meeting(meeting_id)
        feeds: list[dict[str, Any]] = [{"feed_id": m.chair_feed, "role": "chair", "site": None}]
        for site in m.floor:
            feeds.append({"feed_id": feed_id("site", site), "role": "floor", "site": site})
        return feeds

    def chair_media_grant(
        self, meeting_id: str | int | None = None, *, holder: str = "staff"
    ) -> dict[str, Any]:
        """Where the chair console publishes (central) and what it may watch there.

        This is the console's grant (GET /api/media/chair, after the meeting's
        chair-or-delegate check): if the chair feed is lent to a stand-in
        (`lend_chair_feed`), asking for it ends the loan. ``holder`` names who asked
        in the core token (`rights.Holder.staff`).
        """
        m = self._meeting(meeting_id)
        claimed = self._chair_loans.pop(m.meeting_id, None)
        if claimed is not None:
            try:
                claimed()
            except Exception:
                log.exception(
                    "chair feed of meeting %s: the stand-in's hand-over failed", m.meeting_id
                )
        return self._chair_grant(m, holder)

    def lend_chair_feed(
        self, meeting_id: str | int, on_claimed: Callable[[], None]
    ) -> dict[str, Any]:
        """Let a stand-in publisher (the demo's chair bot) hold a program's chair feed.

        The chair feed has one publisher id, so a stand-in and a person's console
        cannot both publish it. The next `chair_media_grant` of that meeting (a
        console asking through the API) ends the loan and calls ``on_claimed`` once:
        the stand-in unpublishes, the console retries its publish until the feed is
        free. Stopping the program ends the loan silently. Returns the stand-in's
        grant; call again during the loan for fresh tokens.
        """
        m = self._meeting(meeting_id)
        self._chair_loans[m.meeting_id] = on_claimed
        return self._chair_grant(m, "stand-in")

    def _chair_grant(self, m: _Meeting, holder: str) -> dict[str, Any]:
        """The chair feed's grant (`GrantSigner.chair`) with the pin of central's program
        room, made by `start_program` before any chair grant."""
        program = {
            "room": m.room,
            "pin": self.control(self.central.name).pins.get(m.room),
            "feeds": self.program_feeds(m.meeting_id)[1:],
        }
        publish = (m.chair_room, m.chair_feed)
        return self._grants.chair(self.central, m.meeting_id, publish, program, holder)

    async def site_media_grant(
        self,
        site_code: str,
        meeting_id: str | int | None = None,
        *,
        credential: int | None = None,
    ) -> dict[str, Any]:
        """Everything a site's browser needs for media.

        Returns a dict: ``node``, ``ws_url`` (the relay's Janus WebSocket),
        ``token`` (core token, sent with every Janus request; valid until
        ``session_expires_at``), ``room_token`` (for VideoRoom ``join``; valid
        until ``expires_at``: fetch a new grant to join again later),
        ``publish`` (uplink ``room``, the ``feed_id`` to publish as and the
        publish ``token``, the only one the room's allowed list holds), and
        ``program`` (``room``, its ``pin`` and the ``feeds`` to subscribe to, the
        site's own feed left out so it never hears itself) or None when no
        program runs.

        ``credential`` is the credential version the caller proved (the API's site
        principal): a grant for an older one than the plane knows is refused, a
        newer one takes the rights of the older one back first
        (`update_credential`). Raises `MediaError` for a site without a usable
        credential.
        """
        cred = await self._site_credential(site_code, credential)
        node = self.site_node(site_code)
        self._granted.add(site_code)
        self._site_nodes.setdefault(site_code, set()).add(node.name)
        program: dict[str, Any] | None = None
        async with self._lock:
            uplink = await self._ensure_uplink(node.name, site_code)
            if self.meetings:
                m = self._meeting(meeting_id)
                pin = await self._ensure_program(node.name, m)
                feeds = [f for f in self.program_feeds(m.meeting_id) if f["site"] != site_code]
                program = {"room": m.room, "pin": pin, "feeds": feeds}
        publish = (uplink, feed_id("site", site_code))
        return self._grants.site(node, site_code, cred, publish, program)

    async def _site_credential(self, site_code: str, proven: int | None) -> int:
        """The credential version a site's grant is for; refuses a site without one."""
        ref = self.sites.get(site_code)
        if ref is None:
            raise MediaError(f"unknown site {site_code!r}")
        if ref.credential is None:
            # Revoked: only a new credential, as the directory tells it, lifts that.
            raise MediaError(f"site {site_code!r} has no credential (revoked)")
        if proven is None or proven == ref.credential:
            return ref.credential
        if proven < ref.credential:
            raise MediaError(f"site {site_code!r}: this credential was replaced")
        # A rotation the plane has not heard of yet: the old credential's rights go first.
        await self.update_credential(site_code, proven)
        return proven

    async def spot_check_grant(self, site_code: str, *, holder: str = "staff") -> dict[str, Any]:
        """For the chair console: subscribe to one site's own feed on its relay.

        Watching only: the token names the site's uplink room, whose allowed list
        holds the site's publish token, not this one. ``holder`` names who asked.
        The site is looked at (`looks`) for `LOOK_SECONDS`: its browser sends the
        high simulcast layer meanwhile, and the low one again afterwards.
        """
        node = self.site_node(site_code)
        self._spot_checked[site_code] = time.monotonic() + LOOK_SECONDS
        async with self._lock:
            uplink = await self._ensure_uplink(node.name, site_code)
            errors = await self.looks.apply(self.desired_looks())
        for err in errors:
            log.warning("spot-check of %s: %s", site_code, err)
        return {
            "node": node.name,
            "ws_url": node.browser_ws_url,
            **self._grants.tokens(node, [uplink], holder),
            "subscribe": {"room": uplink, "feed_id": feed_id("site", site_code)},
        }

    async def wall_grant(
        self, site_codes: list[str], *, holder: str = "staff"
    ) -> list[dict[str, Any]]:
        """For the chair's video wall: one grant per relay covering a page of sites.

        Paging is a new call with the next page; the console drops the old
        subscriptions. Each entry: ``node``, ``ws_url``, ``token``,
        ``room_token``, ``substream`` (the simulcast layer to ask for) and
        ``subscribe`` (a list of ``{site, room, feed_id}``). Watching only, like a
        spot-check.
        """
        per_node: dict[str, list[str]] = {}
        for code in dict.fromkeys(site_codes):
            per_node.setdefault(self.site_node(code).name, []).append(code)
        out: list[dict[str, Any]] = []
        for name, codes in sorted(per_node.items()):
            node = self.registry.get(name)
            async with self._lock:
                rooms = [await self._ensure_uplink(name, code) for code in codes]
            out.append(
                {
                    "node": name,
                    "ws_url": node.browser_ws_url,
                    **self._grants.tokens(node, rooms, holder),
                    # Where the site publishes simulcast, subscribe with
                    # VideoRoom "substream": 0 (the thumbnail layer).
                    "substream": 0,
                    "subscribe": [
                        {"site": c, "room": room_id("uplink", c), "feed_id": feed_id("site", c)}
                        for c in codes
                    ],
                }
            )
        return out

    async def update_credential(self, site_code: str, credential: int | None) -> list[SweepReport]:
        """A site's credential was rotated (``credential``: its new version) or revoked
        (None): `update_credentials` for one site."""
        return await self.update_credentials({site_code: credential})

    async def update_credentials(self, changes: dict[str, int | None]) -> list[SweepReport]:
        """Sites' credentials were rotated (the new version) or revoked (None): take the
        media rights of the old ones back on every relay where they had any.

        On each such relay, once for the whole batch: each site's uplink room is
        destroyed (its publisher and whoever watched it are kicked, the old publish
        token goes with the room's allowed list; the room is made again for the new
        credential when needed); the pin of every program room there changes (an
        old room token is worth nothing now); and every Janus session whose handles
        were attached with a core token of an old credential is ended
        (`revoke.end_sessions`). A site that never had rights in this plane (no
        grant, no uplink room) costs nothing. Returns one sweep report per relay; a
        relay that fails is logged and skipped (one that restarts comes back empty).
        """
        per_node: dict[str, list[str]] = {}
        for code, credential in changes.items():
            ref = self.sites.get(code)
            if ref is None or ref.credential == credential:
                continue
            self.sites[code] = replace(ref, credential=credential)
            if credential is None:
                self._granted.discard(code)
            nodes = self._site_nodes.pop(code, set())
            assigned = self.plan.assignment.get(code)
            if assigned is not None and room_id("uplink", code) in self._rooms.get(assigned, ()):
                nodes.add(assigned)
            for name in nodes:
                per_node.setdefault(name, []).append(code)
        reports: list[SweepReport] = []
        for name, codes in sorted(per_node.items()):
            if not self._up(name):
                continue
            try:
                reports.append(await self._take_back(name, {c: changes[c] for c in codes}))
            except (OSError, JanusError) as exc:
                log.warning("media rights of %s on %s not taken back: %s", codes, name, exc)
        return reports

    async def _take_back(self, node: str, sites: dict[str, int | None]) -> SweepReport:
        ctl = self.control(node)
        async with self._lock:
            have = self._rooms.setdefault(node, set())
            for code in sites:
                await ctl.destroy_room(room_id("uplink", code))
                have.discard(room_id("uplink", code))
            for m in self.meetings.values():
                if m.room in have:
                    await ctl.set_pin(m.room, new_pin())

        def doomed(holder: str) -> bool:
            return any(Holder.superseded(holder, c, v) for c, v in sites.items())

        return await end_sessions(self.registry.get(node), doomed)

    def status(self) -> list[dict[str, Any]]:
        """Per node, for the operator dashboard: health, load and sites served."""
        counts = self.plan.counts()
        out: list[dict[str, Any]] = []
        for node in self.registry.nodes():
            st = self.registry.state(node.name)
            out.append(
                {
                    "node": node.name,
                    "role": node.role,
                    "provinces": list(node.provinces),
                    "up": st.up,
                    "last_error": st.last_error,
                    "janus_sessions": st.sessions,
                    "sites": counts.get(node.name, 0),
                    "capacity": node.capacity,
                    "links_in": sum(
                        1 for lk in self.cascade.records if lk.target_node == node.name
                    ),
                    "links_out": sum(
                        1 for lk in self.cascade.records if lk.source_node == node.name
                    ),
                }
            )
        return out

    # -- failures and restarts -------------------------------------------

    def add_move_listener(self, callback: MoveListener) -> None:
        """Call ``callback(moves)`` whenever health changes move sites between relays.

        The presence layer tells each moved site to fetch a new grant
        (`site_media_grant`) and reconnect to its new relay.
        """
        self._move_listeners.append(callback)

    async def _on_change(self, node: JanusNode, up: bool) -> None:
        if not self._started:
            return  # the first health check; start() plans from its result
        moves = await (self.on_node_up(node) if up else self.on_node_down(node))
        if moves:
            log.info("node %s %s: %d sites move", node.name, "up" if up else "down", len(moves))
            for cb in list(self._move_listeners):
                result = cb(moves)
                if result is not None:
                    await result

    async def on_node_down(self, node: JanusNode) -> list[Move]:
        """Reassign the node's sites to healthy relays and clean its links' other ends.

        Returns the moves; the caller tells each moved site (a new grant).
        """
        async with self._lock:
            self._rooms.pop(node.name, None)
            self.looks.forget_node(node.name)
            await self.cascade.node_lost(node.name, self._up)
            moves: list[Move] = []
            if node.role == "relay":
                self.plan, moves = reassign(
                    self.plan, self.sites.values(), self.registry.healthy("relay")
                )
        await self.sync()
        return moves

    async def on_node_up(self, node: JanusNode) -> list[Move]:
        """A node (re)started empty: forget its old state and rebuild what it should hold.

        Sites stay where they are (no shuffle); unassigned sites get placed.
        """
        async with self._lock:
            self._rooms.pop(node.name, None)
            self.looks.forget_node(node.name)
            self.cascade.forget_node(node.name)
            await self.control(node.name).reset(check_restart=False)
            self.control(node.name).pins.clear()
            moves: list[Move] = []
            if node.role == "relay":
                self.plan, moves = reassign(
                    self.plan, self.sites.values(), self.registry.healthy("relay")
                )
        await self.sync()
        return moves

    async def on_node_restarted(self, node: JanusNode) -> None:
        """A node came back empty before the health checks saw it down (its supervisor
        restarted it within a second or two).

        Its rooms are recreated, and the other end of every link touching it is
        cleaned now: a relay's viewers of the chair are told the feed ended (and
        subscribe again when it is rebuilt) instead of watching a frozen picture,
        and a source stops sending to ports the new process may reuse. Sites stay
        on their relays; their browsers reconnect when their sessions drop.
        """
        async with self._lock:
            self._rooms.pop(node.name, None)
            self.looks.forget_node(node.name)
            await self.cascade.node_lost(
                node.name, lambda n: n != node.name and self.registry.is_up(n)
            )

    async def reconcile(self) -> SyncReport:
        """After a control-plane restart: adopt intact links, remove orphans, rebuild.

        The meetings layer first re-declares running programs (`start_program`,
        `set_floor`); everything on the nodes that is not desired then goes:
        remote publishers, remotizations and rooms.
        """
        async with self._lock:
            desired_rooms = self.desired_rooms()
            # Uplink rooms of every site assigned to a node stay: browsers may be in them.
            for site, node in self.plan.assignment.items():
                if node in desired_rooms:
                    desired_rooms[node][room_id("uplink", site)] = self._uplink_spec(site)
            found: dict[str, set[int]] = {}
            stale: dict[str, set[int]] = {}
            for node, want in desired_rooms.items():
                try:
                    infos = await self.control(node).room_infos()
                except (OSError, JanusError) as exc:
                    log.warning("reconcile: cannot list rooms on %s: %s", node, exc)
                    continue
                # Made by an older control plane or for another credential: their
                # rights are not the ones wanted now (`rooms.is_stale`); made again.
                ctl = self.control(node)
                stale[node] = {
                    i.room for i in infos if i.room in want and await is_stale(ctl, i, want[i.room])
                }
                found[node] = {i.room for i in infos} - stale[node]
            report = await self.cascade.reconcile(self.desired_links(), list(found), found)
            for node, rooms in found.items():
                for room in sorted((rooms - set(desired_rooms[node])) | stale[node]):
                    await self.control(node).destroy_room(room)
                    report.orphans_removed.append(f"room {room} on {node}")
                self._rooms[node] = rooms & set(desired_rooms[node])
                for room in sorted(self._rooms[node]):
                    if desired_rooms[node][room].kind == "program":
                        # Its pin is not known here: viewers' next grants carry the new one.
                        await self.control(node).set_pin(room, new_pin())
        sync = await self.sync()
        report.created += sync.created
        report.adopted += sync.adopted
        report.waiting = sync.waiting
        # A credential rotated or revoked while no control plane ran: its holder's
        # sessions still live on the relays. One sweep of each relay ends them.
        relays = [r for r in self.registry.healthy("relay") if r.name in found]
        current = {Holder.site_key(code): ref.credential for code, ref in self.sites.items()}
        report.orphans_removed += await sweep_outdated(relays, current)
        return report
