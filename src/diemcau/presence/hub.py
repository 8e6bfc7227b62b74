"""`PresenceHub`: the presence service as other packages use it, composed of its parts.

Meetings and command send to sites and broadcast to streams, register handlers
for site requests and listen to presence transitions; the API reads site state
and the staff stream shows it all live (interface in docs/protocol.md). The hub
itself holds no logic: it builds the parts, wires them, runs their periodic
steps, and forwards each public call to the part that owns it:

* `credentials.CredentialCache`: digests and the directory's sites, checked from memory;
* `registry.SessionRegistry`: the one live session per site;
* `lifecycle.SessionLifecycle`: hello to close (welcome, `replay.Replayer`, offline);
* `state.PresenceTracker`: online/degraded/offline, listeners; `session_log.SessionLog`;
* `deadlines.SilenceWatch`: silent sessions cut (heartbeat deadlines);
* `streams.StreamBook`, `message_store.MessageWriter`: numbering, durable storage;
* `delivery.Delivery`, `fanout.Fanout`: send/broadcast, each frame built once;
* `follows.Follows`: who follows which broadcast stream;
* `router.RequestRouter`: site requests to service handlers;
* `staff.StaffFeed`: the staff live stream;
* `server.PresenceServer`: the site socket (`websockets` on its own port, same loop).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Mapping

from diemcau.directory.sites import SiteDirectory, SiteInfo
from diemcau.instance_keys import InstanceKeys
from diemcau.presence.config import PresenceConfig
from diemcau.presence.credentials import CredentialCache
from diemcau.presence.deadlines import SilenceWatch
from diemcau.presence.delivery import Delivery, encode_checked
from diemcau.presence.fanout import Fanout
from diemcau.presence.follows import Follows
from diemcau.presence.lifecycle import SessionLifecycle
from diemcau.presence.message_store import MessageWriter, load_stream_seqs
from diemcau.presence.protocol import (
    MAX_MESSAGE_BYTES,
    PROTOCOL_VERSION,
    PROTOCOL_VERSIONS,
    CloseCode,
)
from diemcau.presence.registry import SessionRegistry
from diemcau.presence.replay import Replayer
from diemcau.presence.router import MessageHandler, RequestRouter
from diemcau.presence.server import PresenceServer
from diemcau.presence.session import SiteSession
from diemcau.presence.session_log import SessionLog
from diemcau.presence.staff import StaffFeed
from diemcau.presence.state import (
    PresenceChange,
    PresenceListener,
    PresenceTracker,
    SiteState,
    StateName,
)
from diemcau.presence.streams import StreamBook
from diemcau.presence.tuning import HeapSettler, tune_process_gc
from diemcau.records import JsonObject
from diemcau.store import Database
from diemcau.tasks import cancel_and_wait, log_step_failure, run_to_end

__all__ = [
    "PresenceHub",
    "PresenceConfig",
    "SiteState",
    "PresenceChange",
    "StateName",
    "MessageHandler",
    "PresenceListener",
]

log = logging.getLogger(__name__)

# How long `stop` lets listener calls and store steps already running finish.
STOP_GRACE_S = 10.0
# How often a server that tunes the process's GC looks at its crowd (`HeapSettler`).
HEAP_STEP_S = 1.0


class PresenceHub:
    """Live site sessions, presence, lossless delivery and the staff live view.

    Args:
        db: the store (messages, follows and the session log are kept there).
        keys: the instance keys (`InstanceKeys`: tokens, site digests); one ``bytes``
            key serves both (tests, tools).
        config: knobs, see `PresenceConfig`.
        clock: wall clock in seconds (times shown and stored).
        sites: the directory's read model of sites, shared with other services
            (one is built from `db` when absent).
    """

    def __init__(
        self,
        db: Database,
        keys: InstanceKeys | bytes,
        config: PresenceConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
        sites: SiteDirectory | None = None,
    ) -> None:
        self.db = db
        self.keys = keys = keys if isinstance(keys, InstanceKeys) else InstanceKeys.single(keys)
        self.config = cfg = config or PresenceConfig()
        self.clock = clock
        self.credentials = CredentialCache(db, keys.site, sites or SiteDirectory(db), keys.token)
        self.staff = StaffFeed(self, clock)
        self.sessions = SessionRegistry()
        self.router = RequestRouter(cfg.max_running_requests)
        self.streams = StreamBook(cfg.ring_size)
        self.session_log = SessionLog(db, self.credentials.knows)
        self.tracker = PresenceTracker(
            clock, cfg.thresholds, self.credentials.site, self.session_log, self.staff.mark
        )
        self._live = live = self.sessions.live  # read per call by is_online (hot)
        self.follows = Follows(db, self.streams, live, self.credentials.unknown, self.staff.mark)
        self.fanout = Fanout(live, self.follows.by_stream)
        self.writer = MessageWriter(db, self.fanout.deliver)
        self.delivery = Delivery(db, clock, self.streams, self.writer, self.fanout)
        self.lifecycle = SessionLifecycle(
            cfg,
            keys.token,
            clock,
            credentials=self.credentials,
            registry=self.sessions,
            tracker=self.tracker,
            streams=self.streams,
            follows=self.follows,
            replayer=Replayer(db, cfg.replay_limit),
            router=self.router,
        )
        windows = (cfg.offline_after_s, cfg.fast_offline_after_s)
        self.silence = SilenceWatch(live, max(windows), cfg.sweep_s, windows)
        self._server: PresenceServer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.heap: HeapSettler | None = None  # set when the config tunes the GC

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.lifecycle.running

    @property
    def stats(self) -> dict[str, int]:
        """Counts of ``joins``, ``refused`` hellos and ``closed`` sessions since start."""
        return self.lifecycle.stats

    async def start(self) -> None:
        """Load caches and state from the store, open the site socket, start the loops."""
        cfg = self.config
        await self.credentials.load()
        self.streams.seed(await load_stream_seqs(self.db))
        await self.follows.load()
        self.tracker.restart()
        self.writer.start()
        self.router.accepting = True
        self.lifecycle.running = True
        self._server = PresenceServer(self.lifecycle, cfg)
        await self._server.start()
        if cfg.tune_gc:  # the current server wiring's opt-in; see PresenceConfig.tune_gc
            tune_process_gc()
            self.heap = HeapSettler()  # from the full collection just made, none closed
        # name, step, period, whether the step uses the store (never cut by a stop)
        loops: list[tuple[str, Callable[[], Awaitable[None]], float, bool]] = [
            ("sweep", self.silence.sweep, cfg.sweep_s, False),
            ("persist", self.session_log.flush, cfg.persist_interval_s, True),
            ("tick", self._tick, cfg.tick_s, False),
            ("staff", self.staff.flush, cfg.staff_batch_s, False),
        ]
        if cfg.credential_poll_s > 0:
            loops.append(("credentials", self._poll_credentials, cfg.credential_poll_s, True))
        if self.heap is not None:
            loops.append(("heap", self._settle_heap, HEAP_STEP_S, False))
        for name, fn, period, store in loops:
            self._tasks.append(
                asyncio.create_task(_every(period, fn, store=store), name=f"presence-{name}")
            )

    async def stop_requests(self) -> None:
        """Answer no more site requests and let those in flight end (the server stops).

        The runtime calls this before it stops the services that answer them, so a
        request is never handled by a service already stopped.
        """
        await self.router.drain(STOP_GRACE_S)

    async def stop(self) -> None:
        """Close every session (``server_shutdown``), store what is pending, stop."""
        if not self.lifecycle.running:
            return
        await self.router.drain(STOP_GRACE_S)
        self.lifecycle.running = False
        self.tracker.listening = False  # consumers are stopped: queued calls are dropped
        for task in self._tasks:
            await cancel_and_wait(task, STOP_GRACE_S)
        self._tasks.clear()
        self.sessions.close_all(CloseCode.GOING_AWAY, "server shutting down")
        if self._server is not None:
            await self._server.stop()
            self._server = None
        await self.writer.stop()
        await self.session_log.flush()
        await self.staff.close_all()
        await self.tracker.drain_listeners(STOP_GRACE_S)

    @property
    def port(self) -> int:
        """The bound port of the site socket (after `start`)."""
        return int(self._server.port) if self._server is not None else self.config.port

    @property
    def url(self) -> str:
        """The URL site terminals connect to."""
        if self.config.public_url:
            return self.config.public_url
        scheme = "wss" if self.config.ssl is not None else "ws"
        return f"{scheme}://{self.config.host}:{self.port}{self.config.path}"

    def describe(self) -> JsonObject:
        """What a site terminal needs to find the socket (GET /api/presence/info).

        ``urls`` lists every control server's socket, in the order to try them (one
        server: its own alone; a standby pair: both, docs/reliability.md). The timing
        shown is the newest version's; each session is told its own in its welcome.
        """
        heartbeat_s, offline_after_s = self.config.timing(PROTOCOL_VERSION)
        return {
            "url": self.url,
            "urls": list(self.config.urls) or [self.url],
            "protocol_version": PROTOCOL_VERSION,
            "protocol_versions": list(PROTOCOL_VERSIONS),
            "heartbeat_s": heartbeat_s,
            "offline_after_s": offline_after_s,
            "max_message_bytes": MAX_MESSAGE_BYTES,
        }

    async def _tick(self) -> None:
        await self.fanout.tick(self.clock, self.config.tick_s)

    async def _settle_heap(self) -> None:
        assert self.heap is not None
        done = self.heap.step(len(self.sessions), self.stats["closed"])
        if done:
            log.debug("heap: %s at %d sessions", done, len(self.sessions))

    async def _poll_credentials(self) -> None:
        await self.credentials.store_rekeyed()
        changed = await self.credentials.poll()
        if changed:
            self._close_stale(changed)

    # --- server -> site delivery -------------------------------------------------------------

    async def send(
        self,
        site_ids: Collection[int],
        kind: str,
        body: Mapping[str, object],
        *,
        msg_id: str | None = None,
        durable: bool = True,
    ) -> None:
        """Send one message to each site on its own stream (per-site sequence numbers).

        Durable messages are stored before this returns and replayed on resume; a
        repeated `msg_id` for a site that already has it is skipped (idempotent
        retries). ``durable=False`` messages are live-only: sent to connected sites
        with ``seq: null``, never stored nor replayed.

        Raises:
            Invalid: bad kind, body not JSON, or over the size limit.
        """
        await self.delivery.send(site_ids, kind, body, msg_id=msg_id, durable=durable)

    async def broadcast(
        self,
        stream: str,
        kind: str,
        body: Mapping[str, object],
        *,
        durable: bool = True,
        msg_id: str | None = None,
    ) -> int:
        """Send one message to every follower of `stream`, encoded once.

        Returns the stream's sequence number of the message (for a repeated
        `msg_id`, the number it got the first time; for ``durable=False``, the
        stream's current number, unchanged: live-only messages carry ``seq: null``).

        Raises:
            Invalid: bad stream name, kind, body, or over the size limit.
        """
        return await self.delivery.broadcast(stream, kind, body, durable=durable, msg_id=msg_id)

    async def follow(self, stream: str, site_ids: Collection[int]) -> None:
        """Make sites follow a broadcast stream from its current number on (persisted).

        Raises:
            Invalid: a bad stream name or an unknown site id.
        """
        await self.follows.follow(stream, site_ids)

    async def unfollow(self, stream: str, site_ids: Collection[int] | None = None) -> None:
        """Stop sites (None: every follower) following a stream (persisted)."""
        await self.follows.unfollow(stream, site_ids)

    def followers(self, stream: str) -> set[int]:
        return self.follows.followers(stream)

    def streams_of(self, site_id: int) -> dict[str, int]:
        """Broadcast streams a site follows, with the seq it follows from."""
        return self.follows.streams_of(site_id)

    # --- site -> server ----------------------------------------------------------------------

    def on_message(self, kind: str, handler: MessageHandler) -> None:
        """Route inbound requests of `kind` to `handler` (its return value is the reply)."""
        self.router.on_message(kind, handler)

    # --- sessions ----------------------------------------------------------------------------

    def close_site(self, site_id: int, reason: str = "closed by an operator") -> bool:
        """Close a site's live session (if any); returns whether one was open."""
        return self.sessions.close(site_id, CloseCode.CLOSED_BY_OPERATOR, reason)

    async def credentials_changed(self, site_ids: Collection[int] | None = None) -> list[int]:
        """Reload credentials now and close sessions whose credential is no longer current.

        The accounts API calls this after a rotation or revocation (the hub also polls
        every `credential_poll_s`). Returns the ids of the sessions closed.
        """
        await self.credentials.load(reload=True)
        return self._close_stale(site_ids if site_ids is not None else self.sessions.site_ids())

    def _close_stale(self, site_ids: Collection[int]) -> list[int]:
        is_current = self.credentials.is_current
        return self.sessions.close_where(
            site_ids,
            lambda session: not is_current(session.principal),
            CloseCode.REVOKED,
            "site credential revoked or replaced",
        )

    def live_sessions(self) -> Mapping[int, SiteSession]:
        return self.sessions.live

    # --- state -------------------------------------------------------------------------------

    def is_online(self, site_id: int) -> bool:
        """Connected and heartbeating (``online`` or ``degraded``)."""
        return site_id in self._live

    def site_state(self, site_id: int) -> SiteState:
        return self.tracker.site_state(site_id)

    def online_site_ids(self) -> set[int]:
        return self.sessions.site_ids()

    def in_meeting(self, site_id: int) -> bool:
        """Connected and following a ``meeting:*`` stream."""
        return site_id in self._live and self.follows.in_meeting(site_id)

    def site_infos(self) -> Mapping[int, SiteInfo]:
        """Every site of the directory by id (revoked ones included)."""
        return self.credentials.sites

    def sites_generation(self) -> int:
        """Bumped whenever `site_infos` changed (derived indexes rebuild)."""
        return self.credentials.generation

    def add_listener(self, callback: PresenceListener) -> None:
        """Call `callback` on every presence transition (sync or async)."""
        self.tracker.add_listener(callback)

    # --- staff live stream -------------------------------------------------------------------

    async def publish_staff_event(
        self, kind: str, body: Mapping[str, object], *, province_id: int | None = None
    ) -> None:
        """Push a domain event to connected staff clients (province officers: own province
        and national events only), in the next coalesced batch.

        Raises:
            Invalid: bad kind or a body that is not JSON-serialisable.
        """
        encode_checked(kind, body)
        self.staff.publish(kind, body, province_id)


async def _every(period: float, fn: Callable[[], Awaitable[None]], *, store: bool) -> None:
    """Run `fn` every `period` seconds until cancelled; a failing step is logged.

    A `store` step is never cut short by the cancel (the loop ends after it, within
    `STOP_GRACE_S`): a session-log write cancelled mid-insert lost its rows (taken out
    of the buffer first) and, like any store call cancelled half-way, could wedge its
    connection (see `PresenceTracker.drain_listeners`).
    """
    while True:
        await asyncio.sleep(period)
        try:
            if store:
                await run_to_end(fn(), grace=STOP_GRACE_S)
            else:
                await fn()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log_step_failure(log, f"presence background step {fn.__name__}", exc)
