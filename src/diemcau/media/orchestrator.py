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
  for a spot-check; a floor grant remotizes that feed to central and to
  every relay's program room (1.1.2 only remotizes local publishers, so the
  copies leave from the speaker's relay, not from central).

Browsers get signed tokens (`JanusNode.browser_token`, `JanusNode.room_token`):
the core token opens sessions on one node and the VideoRoom only; the room
token names the rooms a holder may join. A site's room token names its own
relay's program room and its own uplink room, so it cannot join another
relay's rooms (another node's secret) or another site's feed (another room).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from diemcau.limits import MAX_SPEAKERS
from diemcau.media.cascade import Cascade, RemoteLink, SyncReport
from diemcau.media.control import NodeControl
from diemcau.media.janus import JanusError
from diemcau.media.node import JanusNode, NodeRegistry
from diemcau.media.topology import Move, Plan, SiteRef, plan_sites, reassign
from diemcau.media.turn import TurnServer, ice_servers
from diemcau.tasks import cancel_and_wait

__all__ = ["MediaOrchestrator", "MediaError", "feed_id", "room_id"]

log = logging.getLogger(__name__)


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
    ) -> None:
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
        self._controls: dict[str, NodeControl] = {}
        self.cascade = Cascade(
            self.control,
            lambda n: self.registry.get(n).rtp_host,
            lambda n: self.registry.get(n).rtp_iface or self.registry.get(n).rtp_host,
        )
        self.meetings: dict[str, _Meeting] = {}
        self.plan = Plan()
        self._rooms: dict[str, set[int]] = {}
        self._granted: set[str] = set()
        self._lock = asyncio.Lock()
        self._sync_interval = sync_interval
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self.last_report = SyncReport()
        self._move_listeners: list[MoveListener] = []
        self._chair_loans: dict[str, Callable[[], None]] = {}
        self._started = False
        self.registry.on_change(self._on_change)

    # -- lifecycle -------------------------------------------------------

    def control(self, node: str) -> NodeControl:
        ctl = self._controls.get(node)
        if ctl is None or ctl.node is not self.registry.get(node):
            ctl = NodeControl(self.registry.get(node))
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

    def desired_rooms(self) -> dict[str, dict[int, str]]:
        """Per healthy node: room id → description."""
        out: dict[str, dict[int, str]] = {n.name: {} for n in self.registry.healthy()}
        for m in self.meetings.values():
            for rooms in out.values():
                rooms[m.room] = f"program {m.meeting_id}"
            if self.central.name in out:
                out[self.central.name][m.chair_room] = f"chair {m.meeting_id}"
                if m.inspect is not None:
                    out[self.central.name][m.inspect_room] = f"program-inspect {m.meeting_id}"
        sites = set(self._granted)
        for m in self.meetings.values():
            sites.update(m.floor)
            if m.inspect is not None:
                sites.add(m.inspect)
        for site in sites:
            node = self.plan.assignment.get(site)
            if node in out:
                out[node][room_id("uplink", site)] = f"uplink {site}"
        return out

    def desired_links(self) -> set[RemoteLink]:
        """Chair and each floor speaker → the program room on central and every relay."""
        relays = [n.name for n in self.registry.healthy("relay")]
        if not self._up(self.central.name):
            return set()
        links: set[RemoteLink] = set()
        for m in self.meetings.values():
            for target in [self.central.name, *relays]:
                links.add(
                    RemoteLink(
                        self.central.name, m.chair_room, m.chair_feed, target, m.room, "chair"
                    )
                )
            for site in m.floor:
                node = self.plan.assignment.get(site)
                if node is None or not self._up(node):
                    continue
                for target in [self.central.name, *relays]:
                    links.add(
                        RemoteLink(
                            node,
                            room_id("uplink", site),
                            feed_id("site", site),
                            target,
                            m.room,
                            site,
                        )
                    )
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

    async def _ensure_rooms(self) -> None:
        for node, rooms in self.desired_rooms().items():
            have = self._rooms.setdefault(node, set())
            for room, desc in rooms.items():
                if room not in have:
                    await self.control(node).ensure_room(
                        room, desc, remote_only=desc.startswith("program")
                    )
                    have.add(room)

    async def sync(self) -> SyncReport:
        """One pass: rooms exist, links match the desired state."""
        async with self._lock:
            await self._ensure_rooms()
            self.last_report = await self.cascade.apply(self.desired_links())
            return self.last_report

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
        return self._chair_grant(self.meetings[key])

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

    def _tokens(self, node: JanusNode, rooms: list[int], label: str = "staff") -> dict[str, Any]:
        """The token part of a grant: a long core token, a short room token, TURN.

        TURN credentials (labelled with the site code, or who asked) expire with
        the core token: coturn checks them again on every allocation refresh.
        """
        now = int(time.time())
        return {
            "token": node.browser_token(self.session_ttl),
            "room_token": node.room_token(rooms, self.token_ttl),
            "expires_at": now + self.token_ttl,
            "session_expires_at": now + self.session_ttl,
            "ice_servers": ice_servers(self.turn, label, now + self.session_ttl),
        }

    def chair_media_grant(self, meeting_id: str | int | None = None) -> dict[str, Any]:
        """Where the chair console publishes (central) and what it may watch there.

        This is the console's grant (GET /api/media/chair): if the chair feed is lent
        to a stand-in (`lend_chair_feed`), asking for it ends the loan.
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
        return self._chair_grant(m)

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
        return self._chair_grant(m)

    def _chair_grant(self, m: _Meeting) -> dict[str, Any]:
        c = self.central
        return {
            "node": c.name,
            "ws_url": c.browser_ws_url,
            **self._tokens(c, [m.chair_room, m.room], "chair"),
            "publish": {"room": m.chair_room, "feed_id": m.chair_feed},
            "program": {"room": m.room, "feeds": self.program_feeds(m.meeting_id)[1:]},
        }

    async def site_media_grant(
        self, site_code: str, meeting_id: str | int | None = None
    ) -> dict[str, Any]:
        """Everything a site's browser needs for media.

        Returns a dict: ``node``, ``ws_url`` (the relay's Janus WebSocket),
        ``token`` (core token, sent with every Janus request; valid until
        ``session_expires_at``), ``room_token`` (for VideoRoom ``join``; valid
        until ``expires_at``: fetch a new grant to join again later),
        ``publish`` (uplink ``room`` and the ``feed_id`` to publish as), and
        ``program`` (``room`` and the ``feeds`` to subscribe to, the site's own
        feed left out so it never hears itself) or None when no program runs.
        """
        node = self.site_node(site_code)
        uplink = room_id("uplink", site_code)
        self._granted.add(site_code)
        async with self._lock:
            if uplink not in self._rooms.setdefault(node.name, set()):
                await self.control(node.name).ensure_room(uplink, f"uplink {site_code}")
                self._rooms[node.name].add(uplink)
        rooms = [uplink]
        program: dict[str, Any] | None = None
        if self.meetings:
            m = self._meeting(meeting_id)
            rooms.append(m.room)
            feeds = [f for f in self.program_feeds(m.meeting_id) if f["site"] != site_code]
            program = {"room": m.room, "feeds": feeds}
        return {
            "node": node.name,
            "ws_url": node.browser_ws_url,
            **self._tokens(node, rooms, site_code),
            "publish": {"room": uplink, "feed_id": feed_id("site", site_code)},
            "program": program,
        }

    async def spot_check_grant(self, site_code: str) -> dict[str, Any]:
        """For the chair console: subscribe to one site's own feed on its relay."""
        node = self.site_node(site_code)
        uplink = room_id("uplink", site_code)
        async with self._lock:
            if uplink not in self._rooms.setdefault(node.name, set()):
                await self.control(node.name).ensure_room(uplink, f"uplink {site_code}")
                self._rooms[node.name].add(uplink)
        return {
            "node": node.name,
            "ws_url": node.browser_ws_url,
            **self._tokens(node, [uplink]),
            "subscribe": {"room": uplink, "feed_id": feed_id("site", site_code)},
        }

    async def wall_grant(self, site_codes: list[str]) -> list[dict[str, Any]]:
        """For the chair's video wall: one grant per relay covering a page of sites.

        Paging is a new call with the next page; the console drops the old
        subscriptions. Each entry: ``node``, ``ws_url``, ``token``,
        ``room_token``, ``substream`` (the simulcast layer to ask for) and
        ``subscribe`` (a list of ``{site, room, feed_id}``).
        """
        per_node: dict[str, list[str]] = {}
        for code in dict.fromkeys(site_codes):
            per_node.setdefault(self.site_node(code).name, []).append(code)
        out: list[dict[str, Any]] = []
        for name, codes in sorted(per_node.items()):
            node = self.registry.get(name)
            async with self._lock:
                have = self._rooms.setdefault(name, set())
                for code in codes:
                    if room_id("uplink", code) not in have:
                        await self.control(name).ensure_room(room_id("uplink", code), code)
                        have.add(room_id("uplink", code))
            rooms = [room_id("uplink", c) for c in codes]
            out.append(
                {
                    "node": name,
                    "ws_url": node.browser_ws_url,
                    **self._tokens(node, rooms),
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
            self.cascade.forget_node(node.name)
            await self.control(node.name).reset()
            moves: list[Move] = []
            if node.role == "relay":
                self.plan, moves = reassign(
                    self.plan, self.sites.values(), self.registry.healthy("relay")
                )
        await self.sync()
        return moves

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
                    desired_rooms[node][room_id("uplink", site)] = f"uplink {site}"
            found: dict[str, set[int]] = {}
            for node in desired_rooms:
                try:
                    found[node] = set(await self.control(node).rooms())
                except (OSError, JanusError) as exc:
                    log.warning("reconcile: cannot list rooms on %s: %s", node, exc)
            report = await self.cascade.reconcile(self.desired_links(), list(found), found)
            for node, rooms in found.items():
                for room in sorted(rooms - set(desired_rooms[node])):
                    await self.control(node).destroy_room(room)
                    report.orphans_removed.append(f"room {room} on {node}")
                self._rooms[node] = rooms & set(desired_rooms[node])
        sync = await self.sync()
        report.created += sync.created
        report.adopted += sync.adopted
        report.waiting = sync.waiting
        return report
