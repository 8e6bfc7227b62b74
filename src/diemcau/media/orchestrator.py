"""The media orchestrator: the one object the meetings layer drives.

`MediaOrchestrator` is a facade over the parts of the control plane, which
share one `state.PlaneState`: the programs of running meetings
(`programs`, rooms laid out in `program`), the desired rooms, links and looks
computed from them (`desired`), the sync pass that brings the nodes there
(`sync`), node failures (`failover`), the reconcile after a control-plane
restart (`reconcile`), the grants (`site_grants` for sites' own feeds, `chair`
for the chair feed) and the taking back of a site's rights when its credential
changes (`takeback`).

Browsers get signed tokens (`rights`): the core token opens sessions on one
node and the VideoRoom only, and names its holder; the room token names the
rooms a holder may join. Publishing needs more: a room's ``allowed`` list
holds the publish token of its one publisher (the site in its uplink room, the
chair console in the chair room, nobody in a program room), and program rooms
ask every viewer for a pin, changed when a site of that relay loses its
credential (`update_credential`, docs/media.md "Who may publish and watch").
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence

from diemcau.media.cascade import Cascade, RemoteLink, SyncReport
from diemcau.media.chair import ChairGrants
from diemcau.media.chair_guard import chair_lost
from diemcau.media.control import NodeControl
from diemcau.media.desired import desired_links, desired_looks, desired_rooms
from diemcau.media.errors import MediaError
from diemcau.media.failover import Failover, MoveListener
from diemcau.media.grants import ChairGrant, GrantSigner, SiteGrant, WallGrant, WatchGrant
from diemcau.media.ids import feed_id, room_id
from diemcau.media.looks import Looks
from diemcau.media.node import JanusNode, NodeRegistry
from diemcau.media.node_status import NodeStatus, node_status
from diemcau.media.program import Program, ProgramFeed
from diemcau.media.programs import FloorFeeds, Programs
from diemcau.media.reconcile import reconcile
from diemcau.media.revoke import SweepReport, sweep_holders
from diemcau.media.rights import Holder
from diemcau.media.rooms import RoomSpec
from diemcau.media.site_grants import SiteGrants
from diemcau.media.state import FloorFanout, PlaneState
from diemcau.media.sync import Syncer
from diemcau.media.takeback import update_credentials
from diemcau.media.topology import Move, Plan, SiteRef, plan_sites
from diemcau.media.turn import TurnServer

__all__ = ["MediaOrchestrator", "MediaError", "feed_id", "room_id"]


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
        self.turn = tuple(turn)
        self.registry = registry or NodeRegistry()
        self._own_registry = registry is None
        for n in nodes:
            self.registry.add(n)
        self.state = state = PlaneState(self.registry, sites, floor_fanout)
        self.central = state.central
        self.token_ttl = token_ttl
        self.session_ttl = session_ttl
        signer = GrantSigner(token_ttl, session_ttl, self.turn)
        self.cascade = Cascade(
            state.control,
            lambda n: self.registry.get(n).rtp_host,
            lambda n: self.registry.get(n).rtp_iface or self.registry.get(n).rtp_host,
        )
        self.looks = Looks(state.control)
        self._syncer = Syncer(state, self.cascade, self.looks, sync_interval)
        self._failover = Failover(state, self.cascade, self.looks, self._syncer.sync)
        self._chair = ChairGrants(state, signer)
        self._site_grants = SiteGrants(state, signer, self.looks)
        self._programs = Programs(state, self._syncer.sync, self._chair)
        self.registry.on_change(self._failover.on_change)

    # -- the state, as callers read it -------------------------------------

    @property
    def sites(self) -> dict[str, SiteRef]:
        return self.state.sites

    @property
    def meetings(self) -> dict[str, Program]:
        return self.state.meetings

    @property
    def plan(self) -> Plan:
        return self.state.plan

    @property
    def floor_fanout(self) -> FloorFanout:
        return self.state.floor_fanout

    @floor_fanout.setter
    def floor_fanout(self, value: FloorFanout) -> None:
        self.state.floor_fanout = value

    @property
    def last_report(self) -> SyncReport:
        """What the last sync pass did."""
        return self._syncer.last_report

    # -- lifecycle -------------------------------------------------------

    def control(self, node: str) -> NodeControl:
        return self.state.control(node)

    async def start(self) -> None:
        """Check every node once, plan the sites, start health checks and sync."""
        await self.registry.check_all()
        self.state.plan = plan_sites(self.sites.values(), self.registry.healthy("relay"))
        self._failover.armed = True
        if self._own_registry:
            self.registry.start()
        self._syncer.start()

    async def close(self) -> None:
        """Stop background work; leaves rooms and links on the nodes (see `reconcile`)."""
        await self._syncer.stop()
        if self._own_registry:
            await self.registry.stop()
        for ctl in self.state.controls().values():
            await ctl.close()

    # -- desired state ---------------------------------------------------

    def site_node(self, site_code: str) -> JanusNode:
        """The relay serving ``site_code`` now."""
        return self.state.site_node(site_code)

    def add_sites(self, sites: Iterable[SiteRef]) -> list[Move]:
        """Learn new sites (or a site's new province) and place them; nobody else moves."""
        for site in sites:
            self.sites[site.code] = site
        return self.state.replan()

    def desired_rooms(self) -> dict[str, dict[int, RoomSpec]]:
        """Per healthy node: room id → what the room is for (`desired.desired_rooms`)."""
        return desired_rooms(self.state)

    def desired_links(self) -> set[RemoteLink]:
        """Chair and floor speakers → every program room (`desired.desired_links`)."""
        return desired_links(self.state)

    def desired_looks(self) -> dict[str, tuple[str, int]]:
        """Site → (relay, uplink room) watched at full quality (`desired.desired_looks`)."""
        return desired_looks(self.state)

    async def sync(self) -> SyncReport:
        """One pass: restarted nodes rebuilt, rooms exist, links and looks match the
        desired state."""
        return await self._syncer.sync()

    # -- meetings API ----------------------------------------------------

    async def start_program(self, meeting_id: str | int) -> ChairGrant:
        """Create the meeting's program rooms on every node; returns the chair's grant.

        The chair feed is carried to the relays as soon as the chair publishes.
        """
        return await self._programs.start(meeting_id)

    def restore_program(self, meeting_id: str | int, floor: list[str] | None = None) -> None:
        """Re-declare a running program after a control restart, touching no node.

        Call for every running meeting, then `reconcile` once.
        """
        self._programs.restore(meeting_id, floor)

    async def set_floor(self, meeting_id: str | int, site_codes: list[str]) -> FloorFeeds:
        """Give the floor to 0, 1 or 2 sites (replacing the previous speakers).

        Returns the program feeds sites should subscribe to now.
        """
        return await self._programs.set_floor(meeting_id, site_codes)

    async def set_inspection(self, meeting_id: str | int, site_code: str | None) -> None:
        """Carry one site's own feed into the meeting's inspect room on central (None: stop).

        Only for recording a spot-check at central (docs/recording.md); the chair
        console watches a spot-check on the site's relay (`spot_check_grant`).
        """
        await self._programs.set_inspection(meeting_id, site_code)

    async def stop_program(self, meeting_id: str | int) -> None:
        """Remove the meeting's links and destroy its program rooms everywhere."""
        await self._programs.stop(meeting_id)

    def program_feeds(self, meeting_id: str | int | None = None) -> list[ProgramFeed]:
        """The feeds of the program: the chair, then the floor speakers."""
        return self.state.program(meeting_id).feeds()

    # -- grants ----------------------------------------------------------

    def chair_media_grant(
        self, meeting_id: str | int | None = None, *, holder: str = "staff"
    ) -> ChairGrant:
        """Where the chair console publishes (central) and what it may watch there.

        This is the console's grant (GET /api/media/chair, after the meeting's
        chair-or-delegate check): if the chair feed is lent to a stand-in
        (`lend_chair_feed`), asking for it ends the loan. ``holder`` names who asked
        in the core token (`rights.Holder.staff`).
        """
        return self._chair.console_grant(meeting_id, holder)

    def lend_chair_feed(self, meeting_id: str | int, on_claimed: Callable[[], None]) -> ChairGrant:
        """Let a stand-in publisher (the demo's chair bot) hold a program's chair feed.

        The chair feed has one publisher id, so a stand-in and a person's console
        cannot both publish it. The next `chair_media_grant` of that meeting (a
        console asking through the API) ends the loan and calls ``on_claimed`` once:
        the stand-in unpublishes, the console retries its publish until the feed is
        free. Stopping the program ends the loan silently. Returns the stand-in's
        grant; call again during the loan for fresh tokens.
        """
        return self._chair.lend(meeting_id, on_claimed)

    async def site_media_grant(
        self,
        site_code: str,
        meeting_id: str | int | None = None,
        *,
        credential: int | None = None,
    ) -> SiteGrant:
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
        return await self._site_grants.site(site_code, meeting_id, credential)

    async def spot_check_grant(self, site_code: str, *, holder: str = "staff") -> WatchGrant:
        """For the chair console: subscribe to one site's own feed on its relay.

        Watching only: the token names the site's uplink room, whose allowed list
        holds the site's publish token, not this one. ``holder`` names who asked.
        The site is looked at (`looks`) for `LOOK_SECONDS`: its browser sends the
        high simulcast layer meanwhile, and the low one again afterwards.
        """
        return await self._site_grants.spot_check(site_code, holder)

    async def wall_grant(self, site_codes: list[str], *, holder: str = "staff") -> list[WallGrant]:
        """For the chair's video wall: one grant per relay covering a page of sites.

        Paging is a new call with the next page; the console drops the old
        subscriptions. Each entry: ``node``, ``ws_url``, ``token``,
        ``room_token``, ``substream`` (the simulcast layer to ask for) and
        ``subscribe`` (a list of ``{site, room, feed_id}``). Watching only, like a
        spot-check.
        """
        return await self._site_grants.wall(site_codes, holder)

    async def update_credential(self, site_code: str, credential: int | None) -> list[SweepReport]:
        """A site's credential was rotated (``credential``: its new version) or revoked
        (None): `update_credentials` for one site."""
        return await self.update_credentials({site_code: credential})

    async def update_credentials(self, changes: dict[str, int | None]) -> list[SweepReport]:
        """Sites' credentials were rotated (the new version) or revoked (None): take the
        media rights of the old ones back on every relay where they had any
        (`takeback.update_credentials`). Returns one sweep report per relay."""
        return await update_credentials(self.state, changes)

    async def chair_lost(
        self, meeting_id: str | int, usernames: Collection[str]
    ) -> SweepReport | None:
        """Staff ``usernames`` may no longer run the live meeting (removed delegates):
        the chair feed's publish token is replaced and their sessions in its rooms at
        central end (`chair_guard.chair_lost`)."""
        return await chair_lost(self.state, meeting_id, usernames)

    async def staff_sessions_ended(self, usernames: Collection[str]) -> list[SweepReport]:
        """Staff accounts' sessions ended (logout, password or role change, disabled):
        every Janus session their grants opened, on every node, ends now
        (`revoke.sweep_holders`). Returns one report per node."""
        holders = [Holder.staff(u) for u in usernames]
        return await sweep_holders(self.registry.healthy(), holders) if holders else []

    def status(self) -> list[NodeStatus]:
        """Per node, for the operator dashboard: health, load and sites served."""
        return node_status(self.registry, self.plan, self.cascade)

    # -- failures and restarts -------------------------------------------

    def add_move_listener(self, callback: MoveListener) -> None:
        """Call ``callback(moves)`` whenever health changes move sites between relays.

        The presence layer tells each moved site to fetch a new grant
        (`site_media_grant`) and reconnect to its new relay.
        """
        self._failover.listeners.append(callback)

    async def on_node_down(self, node: JanusNode) -> list[Move]:
        """Reassign the node's sites to healthy relays and clean its links' other ends.

        Returns the moves; the caller tells each moved site (a new grant).
        """
        return await self._failover.node_down(node)

    async def on_node_up(self, node: JanusNode) -> list[Move]:
        """A node (re)started empty: forget its old state and rebuild what it should hold.

        Sites stay where they are (no shuffle); unassigned sites get placed.
        """
        return await self._failover.node_up(node)

    async def on_node_restarted(self, node: JanusNode) -> None:
        """A node came back empty before the health checks saw it down
        (`sync.Syncer.node_restarted`)."""
        await self._syncer.node_restarted(node)

    async def reconcile(self) -> SyncReport:
        """After a control-plane restart: adopt intact links, remove orphans, rebuild.

        The meetings layer first re-declares running programs (`restore_program`,
        `set_floor`); everything on the nodes that is not desired then goes:
        remote publishers, remotizations and rooms.
        """
        return await reconcile(self.state, self.cascade, self._syncer.sync)
